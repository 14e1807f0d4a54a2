//! `flowtide synth`: reproducible synthetic captures.
