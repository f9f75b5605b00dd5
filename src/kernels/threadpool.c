/*
 * threadpool.c - see threadpool.h.
 *
 * A run is published by bumping `generation` under the mutex; workers wait
 * for a generation they have not seen yet, then all threads (the caller
 * included) pull item indices from `next` until it passes `n`.  The caller
 * waits until `active` drops to zero, so no worker can still be touching the
 * run's arguments when g4_pool_run returns.
 */
/* sched_getaffinity / CPU_COUNT (the CPUs this process may use, which
 * containers and taskset narrow) are GNU extensions; elsewhere the code
 * below falls back to sysconf */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kernels/threadpool.h"

#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct g4_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation;
    int active;      /* workers still inside the current run */
    int quit;
    g4_pool_fn fn;
    void *arg;
    int64_t n;
    atomic_int_fast64_t next;
};

typedef struct { g4_pool *pool; int id; } worker_arg;

static void drain(g4_pool *p, int id)
{
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        p->fn(p->arg, i, id);
    }
}

static void *worker_main(void *v)
{
    worker_arg *wa = v;
    g4_pool *p = wa->pool;
    int id = wa->id;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

g4_pool *g4_pool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    g4_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) { g4_pool_free(p); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) { p->n_threads = i; g4_pool_free(p); return NULL; }
            wa->pool = p;
            wa->id = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->n_threads = i;
                g4_pool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void g4_pool_free(g4_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int g4_pool_size(const g4_pool *p) { return p ? p->n_threads : 1; }

void g4_pool_run(g4_pool *p, int64_t n, g4_pool_fn fn, void *arg)
{
    if (n <= 0) return;
    if (!p || p->n_threads == 1 || n == 1) {
        for (int64_t i = 0; i < n; i++) fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next, 0);
    p->active = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

#if defined(__linux__) && defined(CPU_COUNT)
/* one small sysfs integer; -1 when absent or malformed */
static long read_sys_int(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1 || v < 0) v = -1;
    fclose(f);
    return v;
}
#endif

int g4_cpu_cores(void)
{
    const int logical = g4_cpu_count();
#if defined(__linux__) && defined(CPU_COUNT)
    /* SMT siblings share one core's execution units: the matrix kernels keep
     * them busy, so a second thread per core only adds synchronisation.
     * Count the distinct (package, core) pairs of the CPUs this process may
     * run on, from sysfs; any gap there falls back to the logical count. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return logical;
    enum { MAX_CORES = 1024 };
    static long seen[MAX_CORES][2];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        const long pkg = read_sys_int(path);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        const long core = read_sys_int(path);
        if (pkg < 0 || core < 0) return logical;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = seen[i][0] == pkg && seen[i][1] == core;
        if (dup) continue;
        if (n == MAX_CORES) return logical;
        seen[n][0] = pkg;
        seen[n][1] = core;
        n++;
    }
    if (n >= 1 && n <= logical) return n;
#endif
    return logical;
}

int g4_cpu_count(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
