"""Times NFStream (statistical analysis on) over a capture; prints 'flows seconds'."""
import sys
import time

from nfstream import NFStreamer

t0 = time.perf_counter()
flows = sum(1 for _ in NFStreamer(source=sys.argv[1], statistical_analysis=True, n_dissections=0))
print(flows, time.perf_counter() - t0)
