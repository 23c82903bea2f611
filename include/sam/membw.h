/*
 * membw.h - memory bandwidth, measured the way STREAM does, so that
 * generation speed can be compared with what the memory system can deliver.
 */
#ifndef SAM_MEMBW_H
#define SAM_MEMBW_H

#include <stddef.h>

/*
 * Default size of each triad array: 256 MiB, 8x the 32 MiB L3 of the
 * machines this was tuned on. (sysconf's _SC_LEVEL3_CACHE_SIZE is not
 * used: in virtual machines it can report the host's whole L3.)
 */
#define SAM_MEMBW_DEFAULT_BYTES ((size_t)256 << 20)

/*
 * STREAM-style triad a[i] = b[i] + s*c[i] over three arrays of doubles of
 * bytes_per_array bytes each (0: SAM_MEMBW_DEFAULT_BYTES), split evenly across
 * threads (pthreads; <= 0 means 1), each thread touching its own part first.
 * Returns the best of several passes in GB/s (1e9 bytes/s), counting 24
 * bytes per element (2 reads + 1 write; the write-allocate read of a[] is
 * not counted, as STREAM does not count it); -1 when memory or threads
 * cannot be had.
 */
double sam_membw_triad(int threads, size_t bytes_per_array);

#endif
