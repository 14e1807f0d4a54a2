//! Live capture from network interfaces (libpcap).
