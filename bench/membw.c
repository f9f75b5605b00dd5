/*
 * membw.c - memory read-bandwidth probe: N threads each sum their own slice
 * of one large buffer (8-byte words, several independent accumulators so the
 * loop is bound by loads, not by an add chain); best of K runs, in GB/s
 * (10^9 bytes per second).  The number is the "roofline" that weight-streaming
 * decode can at best reach: bytes of weights read per token / this bandwidth.
 *
 *   membw [-s MIB] [-t THREADS] [-k RUNS] [--json]
 *
 * The buffer is written once (by the thread that later reads that slice)
 * before any timing, so page faults are not measured.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint64_t *p;
    size_t n;       /* words */
    int fill;       /* 1: write the slice, 0: sum it */
    uint64_t sum;
} slice;

static void *work(void *arg)
{
    slice *s = arg;
    if (s->fill) {
        for (size_t i = 0; i < s->n; i++) s->p[i] = i * 2654435761u;
        return NULL;
    }
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    const uint64_t *p = s->p;
    size_t i = 0, n8 = s->n & ~(size_t)7;
    for (; i < n8; i += 8) {
        a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3];
        a4 += p[i + 4]; a5 += p[i + 5]; a6 += p[i + 6]; a7 += p[i + 7];
    }
    for (; i < s->n; i++) a0 += p[i];
    s->sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs work() on every slice in parallel; returns the wall time. */
static double run_all(slice *sl, int nt, int fill)
{
    pthread_t *th = malloc((size_t)nt * sizeof *th);
    if (!th) { fprintf(stderr, "membw: out of memory\n"); exit(1); }
    double t0 = now_s();
    for (int i = 0; i < nt; i++) {
        sl[i].fill = fill;
        if (pthread_create(&th[i], NULL, work, &sl[i]) != 0) { fprintf(stderr, "membw: cannot start a thread\n"); exit(1); }
    }
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    free(th);
    return dt;
}

static long parse(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "membw: %s: expected an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s ? s : "");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long mib = 1024, nt = ncpu > 0 ? ncpu : 1, runs = 5;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: membw [-s MIB] [-t THREADS] [-k RUNS] [--json]\n"
                   "  sums a MIB-MiB buffer (default 1024) with THREADS threads (default: all CPUs),\n"
                   "  best of RUNS (default 5); prints the read bandwidth in GB/s (1e9 bytes/s).\n");
            return 0;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-s")) { mib = parse(a, v, 1, 1 << 20); i++; }
        else if (!strcmp(a, "-t")) { nt = parse(a, v, 1, 4096); i++; }
        else if (!strcmp(a, "-k")) { runs = parse(a, v, 1, 1000); i++; }
        else { fprintf(stderr, "membw: unknown argument '%s' (membw --help)\n", a); return 2; }
    }
    size_t bytes = (size_t)mib << 20, words = bytes / 8;
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, bytes) != 0) { fprintf(stderr, "membw: cannot allocate %ld MiB\n", mib); return 1; }
    slice *sl = calloc((size_t)nt, sizeof *sl);
    if (!sl) { fprintf(stderr, "membw: out of memory\n"); return 1; }
    size_t per = words / (size_t)nt;
    for (long i = 0; i < nt; i++) {
        sl[i].p = buf + (size_t)i * per;
        sl[i].n = i == nt - 1 ? words - (size_t)i * per : per;
    }
    run_all(sl, (int)nt, 1);
    double best = 0, total = 0;
    uint64_t check = 0;
    for (long r = 0; r < runs; r++) {
        double dt = run_all(sl, (int)nt, 0);
        double gbs = (double)bytes / dt / 1e9;
        if (gbs > best) best = gbs;
        total += gbs;
        for (long i = 0; i < nt; i++) check += sl[i].sum;
    }
    if (json)
        printf("{\"mib\": %ld, \"threads\": %ld, \"runs\": %ld, \"best_gbps\": %.3f, \"mean_gbps\": %.3f, \"checksum\": %llu}\n",
               mib, nt, runs, best, total / runs, (unsigned long long)check);
    else
        printf("membw: %ld MiB, %ld threads, best of %ld: %.2f GB/s (mean %.2f)  [checksum %llx]\n", mib, nt, runs,
               best, total / runs, (unsigned long long)check);
    free(sl);
    free(buf);
    return 0;
}
