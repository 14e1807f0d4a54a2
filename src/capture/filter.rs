//! BPF capture filters (compiled by libpcap) for capture files.
