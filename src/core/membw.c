/*
 * membw.c - a STREAM-style triad to measure memory bandwidth.
 *
 * Three arrays of doubles, each far larger than the last-level cache, are
 * split into one contiguous slice per thread. Every thread first writes its
 * own slices (first touch, so on NUMA machines the pages are local), then
 * all threads run the triad a[i] = b[i] + s*c[i] over their slices in
 * lock-step passes separated by a barrier. The time of a pass runs from the
 * barrier that starts it to the barrier where the slowest thread has
 * finished; the best (shortest) pass wins, as in STREAM.
 *
 * Bytes counted per element: 24 = read b, read c, write a. A cache with
 * write-allocate also reads a[] before writing it (32 bytes of real
 * traffic); like STREAM, that extra read is NOT counted, so the figure is
 * comparable with published STREAM triad numbers and is a slight
 * underestimate of the bus traffic.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdlib.h>

#include "sam/core.h"
#include "sam/membw.h"

#define PASSES 8
#define MAX_THREADS 256

struct triad {
	double *a, *b, *c;
	size_t n; /* elements per array */
	int threads;
	pthread_barrier_t bar;
};

struct worker {
	struct triad *t;
	int id;
	pthread_t th;
};

/* Thread id's elements [lo, hi): slices start on 64-byte boundaries. */
static void slice(const struct triad *t, int id, size_t *lo, size_t *hi)
{
	*lo = t->n * (size_t)id / (size_t)t->threads / 8 * 8;
	*hi = id + 1 == t->threads ? t->n : t->n * (size_t)(id + 1) / (size_t)t->threads / 8 * 8;
}

/*
 * 4 doubles at a time with GCC/Clang vector extensions (SSE2 pairs on a
 * baseline x86-64 build, whatever the target has elsewhere): -O2 does not
 * vectorize the plain loop, and scalar loads leave bandwidth unused.
 * a, b, c are 64-byte aligned (page-aligned arrays, slices on multiples of 8).
 */
typedef double v4d __attribute__((vector_size(32)));
static void triad_run(double *restrict a, const double *restrict b, const double *restrict c, size_t n, double s)
{
	size_t i = 0;
	v4d vs = { s, s, s, s };
	for (; i + 4 <= n; i += 4)
		*(v4d *)(void *)(a + i) = *(const v4d *)(const void *)(b + i) + vs * *(const v4d *)(const void *)(c + i);
	for (; i < n; i++) a[i] = b[i] + s * c[i];
}

/* First touch, then PASSES triads between barriers. Thread 0 is the caller and times the passes. */
static double work(struct triad *t, int id)
{
	size_t lo, hi;
	slice(t, id, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		t->a[i] = 0.0;
		t->b[i] = 1.0;
		t->c[i] = 2.0;
	}
	double best = 0;
	for (int p = 0; p < PASSES; p++) {
		pthread_barrier_wait(&t->bar);
		double t0 = sam_now();
		triad_run(t->a + lo, t->b + lo, t->c + lo, hi - lo, 3.0);
		pthread_barrier_wait(&t->bar);
		double dt = sam_now() - t0;
		if (id == 0 && (best == 0 || dt < best)) best = dt;
	}
	return best;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	work(w->t, w->id);
	return NULL;
}

/*
 * Untouched memory for one array: mmap, with transparent huge pages asked
 * for where the kernel has them (faulting in 4 KiB pages of 3 x 256 MiB
 * costs seconds in a virtual machine; huge pages cost milliseconds).
 */
static double *array_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
	return p;
}

static void array_free(double *p, size_t bytes)
{
	if (p) munmap(p, bytes);
}

double sam_membw_triad(int threads, size_t bytes_per_array)
{
	if (threads <= 0) threads = 1;
	if (threads > MAX_THREADS) threads = MAX_THREADS;
	if (!bytes_per_array) bytes_per_array = SAM_MEMBW_DEFAULT_BYTES;
	struct triad t = { .n = bytes_per_array / sizeof(double), .threads = threads };
	if (t.n < (size_t)threads) t.n = (size_t)threads;
	size_t bytes = t.n * sizeof(double);
	/* not touched here: each thread faults in its own slices */
	t.a = array_alloc(bytes);
	t.b = array_alloc(bytes);
	t.c = array_alloc(bytes);
	double gbs = -1;
	struct worker *w = xcalloc((size_t)threads, sizeof *w);
	int started = 1;
	if (!t.a || !t.b || !t.c || pthread_barrier_init(&t.bar, NULL, (unsigned)threads)) goto out_free;
	for (; started < threads; started++) {
		w[started] = (struct worker){ .t = &t, .id = started };
		if (pthread_create(&w[started].th, NULL, worker_main, &w[started])) break;
	}
	if (started < threads) {
		/* the barrier counts every thread: it cannot be passed now; this is rare enough to give up */
		SAM_BUG("membw: pthread_create failed after %d threads", started);
	}
	double best = work(&t, 0);
	for (int i = 1; i < threads; i++) pthread_join(w[i].th, NULL);
	pthread_barrier_destroy(&t.bar);
	/* read a result so the stores cannot be optimised away */
	volatile double sink = t.a[t.n / 2];
	(void)sink;
	if (best > 0) gbs = 3.0 * (double)t.n * sizeof(double) / best / 1e9;
out_free:
	free(w);
	array_free(t.a, bytes);
	array_free(t.b, bytes);
	array_free(t.c, bytes);
	return gbs;
}
