/*
 * test_cpucount.c - the default thread count: g4_cpu_cores() (physical
 * cores the process may run on) lies between 1 and g4_cpu_count() (logical
 * CPUs it may run on), and both follow the affinity mask: narrowed to one
 * CPU, both are 1; narrowed to two SMT siblings of one core (when the
 * machine has them), cores is 1 and count 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "kernels/threadpool.h"
#include "testutil.h"

int main(void)
{
    const int cores = g4_cpu_cores(), count = g4_cpu_count();
    printf("  cores %d, logical CPUs %d\n", cores, count);
    CHECKF(cores >= 1 && cores <= count, "g4_cpu_cores() = %d outside [1, g4_cpu_count() = %d]", cores, count);
#ifdef CPU_COUNT
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all) == 0) {
        int first = -1;
        for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
            if (CPU_ISSET(c, &all)) first = c;
        CPU_ZERO(&one);
        CPU_SET(first, &one);
        if (sched_setaffinity(0, sizeof one, &one) == 0) {
            CHECKF(g4_cpu_count() == 1, "affinity to CPU %d: g4_cpu_count() = %d", first, g4_cpu_count());
            CHECKF(g4_cpu_cores() == 1, "affinity to CPU %d: g4_cpu_cores() = %d", first, g4_cpu_cores());
            /* an SMT sibling of `first`, if the topology lists one */
            char path[128];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", first);
            FILE *f = fopen(path, "r");
            int a = -1, b = -1;
            if (f) {
                char sep = 0;
                if (fscanf(f, "%d%c%d", &a, &sep, &b) != 3 || (sep != ',' && sep != '-')) b = -1;
                fclose(f);
            }
            const int sib = a == first ? b : a;
            if (sib >= 0 && sib != first && CPU_ISSET(sib, &all)) {
                CPU_SET(sib, &one);
                if (sched_setaffinity(0, sizeof one, &one) == 0) {
                    CHECKF(g4_cpu_count() == 2, "CPUs %d,%d: g4_cpu_count() = %d", first, sib, g4_cpu_count());
                    CHECKF(g4_cpu_cores() == 1, "SMT siblings %d,%d: g4_cpu_cores() = %d", first, sib, g4_cpu_cores());
                }
            } else {
                printf("  no SMT sibling of CPU %d here: the sibling case is not exercised\n", first);
            }
            sched_setaffinity(0, sizeof all, &all);
        }
    }
#endif
    return tu_finish("cpucount");
}
