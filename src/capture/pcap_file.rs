//! Capture files (pcap, pcapng) and standard input.
