/*
 * dispatch.c - see dispatch.h.
 */
#include "kernels/dispatch.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define G4_X86 1
#endif
#if defined(__aarch64__) && !defined(__AARCH64EB__) && (defined(__GNUC__) || defined(__clang__))
#define G4_ARM 1
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

g4_kernel_table g4_dispatch_active;

static g4_kernel_table level_tables[G4_CPU_LEVELS];  /* [0] stays all NULL */
static int detected = G4_CPU_SCALAR, active = G4_CPU_SCALAR;
static bool probed;

#ifdef G4_X86
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int probe_x86(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return G4_CPU_SCALAR;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(osxsave && avx && fma && f16c))
        return G4_CPU_SCALAR;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6)              /* XMM and YMM state */
        return G4_CPU_SCALAR;
    if (__get_cpuid_max(0, NULL) < 7)
        return G4_CPU_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 5)))                 /* AVX2 */
        return G4_CPU_SCALAR;
    const bool f512 = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
    if (f512 && bw && vl && vnni && (xcr0 & 0xe0) == 0xe0)  /* opmask, ZMM state */
        return G4_CPU_AVX512;
    return G4_CPU_AVX2;
}
#endif

#ifdef G4_ARM
/* Advanced SIMD is part of every AArch64 CPU; SDOT is optional (ARMv8.2). */
static int probe_arm(void)
{
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? G4_CPU_DOTPROD : G4_CPU_NEON;
#elif defined(__APPLE__) || defined(__ARM_FEATURE_DOTPROD)
    return G4_CPU_DOTPROD; /* every Apple Silicon CPU has it */
#else
    return G4_CPU_NEON;
#endif
}
#endif

/* whether `level` belongs to this build's architecture */
static bool level_in_build(int level)
{
#ifdef G4_X86
    if (level == G4_CPU_AVX2 || level == G4_CPU_AVX512)
        return true;
#endif
#ifdef G4_ARM
    if (level == G4_CPU_NEON || level == G4_CPU_DOTPROD)
        return true;
#endif
    return level == G4_CPU_SCALAR;
}

static int parse_level(const char *s)
{
    for (int l = 0; l < G4_CPU_LEVELS; l++)
        if (strcmp(s, g4_cpu_level_name(l)) == 0)
            return l;
    return -1;
}

static void probe(void)
{
    if (probed)
        return;
    probed = true;
#ifdef G4_X86
    detected = probe_x86();
    for (int l = G4_CPU_AVX2; l <= detected; l++) {
        g4_simd_x86_fill(l, &level_tables[l]);
        g4_gemm_x86_fill(l, &level_tables[l]);
    }
#endif
#ifdef G4_ARM
    detected = probe_arm();
    for (int l = G4_CPU_NEON; l <= detected; l++) {
        g4_simd_arm_fill(l, &level_tables[l]);
        g4_gemm_arm_fill(l, &level_tables[l]);
    }
#endif
    active = detected;
    const char *env = getenv("G4_CPU");
    if (env && *env) {
        const int want = parse_level(env);
        if (want < 0)
            fprintf(stderr, "gemma4: G4_CPU=%s: unknown level (scalar, avx2, avx512, neon, dotprod); using %s\n", env,
                    g4_cpu_level_name(detected));
        else if (want > detected || !level_in_build(want))
            fprintf(stderr, "gemma4: G4_CPU=%s: this CPU lacks it; using %s\n", env, g4_cpu_level_name(detected));
        else
            active = want;
    }
    /* the active table: each type's kernel from the highest level <= active */
    for (int l = G4_CPU_AVX2; l <= active; l++) {
        for (int i = 0; i < 64; i++) {
            if (level_tables[l].vec_dot[i]) {
                g4_dispatch_active.vec_dot[i] = level_tables[l].vec_dot[i];
                /* the x4 kernel must be the exact twin of the single one:
                 * from the same level, or none */
                g4_dispatch_active.vec_dot_x4[i] = level_tables[l].vec_dot_x4[i];
                g4_dispatch_active.gemm[i] = level_tables[l].gemm[i];
            }
            if (level_tables[l].quantize_act[i])
                g4_dispatch_active.quantize_act[i] = level_tables[l].quantize_act[i];
        }
    }
}

/* Runs before main (and before any thread exists), so the table is written
 * once and only read afterwards. */
__attribute__((constructor)) static void probe_at_start(void) { probe(); }

int g4_cpu_detected(void) { probe(); return detected; }
int g4_cpu_level(void) { probe(); return active; }

const char *g4_cpu_level_name(int level)
{
    switch (level) {
    case G4_CPU_SCALAR: return "scalar";
    case G4_CPU_AVX2:   return "avx2";
    case G4_CPU_AVX512: return "avx512";
    case G4_CPU_NEON:   return "neon";
    case G4_CPU_DOTPROD: return "dotprod";
    default:            return "?";
    }
}

g4_vec_dot_fn g4_kernel_vec_dot(int level, uint32_t type)
{
    probe();
    if (level < 0 || level >= G4_CPU_LEVELS || type >= 64)
        return NULL;
    return level_tables[level].vec_dot[type];
}

g4_quantize_act_fn g4_kernel_quantize_act(int level, uint32_t vdt)
{
    probe();
    if (level < 0 || level >= G4_CPU_LEVELS || vdt >= 64)
        return NULL;
    return level_tables[level].quantize_act[vdt];
}

g4_vec_dot_x4_fn g4_kernel_vec_dot_x4(int level, uint32_t type)
{
    probe();
    if (level < 0 || level >= G4_CPU_LEVELS || type >= 64)
        return NULL;
    return level_tables[level].vec_dot_x4[type];
}

const g4_gemm_kernel *g4_kernel_gemm(int level, uint32_t type)
{
    probe();
    if (level < 0 || level >= G4_CPU_LEVELS || type >= 64)
        return NULL;
    return level_tables[level].gemm[type];
}
