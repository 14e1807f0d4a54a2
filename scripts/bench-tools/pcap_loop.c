/* The bare libpcap read loop: the floor every analyzer is compared against.
 * Reads a capture with pcap_next_ex and touches each packet's length; prints
 * "packets seconds". Built by scripts/bench. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: pcap_loop FILE\n"); return 2; }
    char err[PCAP_ERRBUF_SIZE];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    struct pcap_pkthdr *h; const unsigned char *d;
    unsigned long long n = 0, bytes = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) { n++; bytes += h->caplen + d[0]; }
    pcap_close(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%llu %.6f %llu\n", n, s, bytes);
    return 0;
}
