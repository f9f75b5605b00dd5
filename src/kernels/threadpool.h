/*
 * threadpool.h - persistent worker threads for data-parallel loops.
 *
 * g4_pool_run(pool, n, fn, arg) calls fn(arg, i, thread_id) for every i in
 * [0, n) spread over the workers and the calling thread, and returns when all
 * calls are done.  Work items are claimed one at a time from an atomic
 * counter, so uneven items balance themselves.  Workers sleep on a condition
 * variable between runs; one run at a time per pool (not re-entrant).
 */
#ifndef G4_THREADPOOL_H
#define G4_THREADPOOL_H

#include <stdint.h>

typedef struct g4_pool g4_pool;
typedef void (*g4_pool_fn)(void *arg, int64_t i, int thread_id);

/* n_threads includes the calling thread; 1 means no workers. NULL on failure. */
g4_pool *g4_pool_new(int n_threads);
void     g4_pool_free(g4_pool *pool);
int      g4_pool_size(const g4_pool *pool);
void     g4_pool_run(g4_pool *pool, int64_t n, g4_pool_fn fn, void *arg);

/* Number of CPUs available to this process (at least 1). */
int g4_cpu_count(void);
/* Number of physical cores among them (SMT siblings counted once; Linux
 * sysfs topology, else g4_cpu_count()): the default thread count. */
int g4_cpu_cores(void);

#endif
