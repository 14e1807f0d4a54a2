//! The runtime: timely configuration, feeds, workers.
