#!/usr/bin/env bash
# cross-neon.sh BUILD_DIR - the AArch64 kernels (src/kernels/simd_arm.c,
# gemm_arm.c), cross-compiled with Debian's aarch64-linux-gnu-gcc (static)
# and run under qemu-aarch64 (user mode), without ARM hardware.
#
# Only the kernels are built (quant.c, dispatch.c, simd_arm.c, gemm_arm.c
# and the empty x86 units; ops.c and threadpool.c for test_gemm), with
# three drivers:
#   - tests/test_simd.c, the same contract test x86 runs: quantize_act
#     byte-identical to the scalar twin, every dot within 1e-6 of sum|terms|
#     of it, on random rows with extreme scales, ties, denormals, NaN/inf and
#     ragged block counts;
#   - tests/arm/test_neon.c: the probe and G4_CPU, routing of the public
#     entry points, a float64 reference from dequantized rows, fixed vectors;
#   - tests/test_gemm.c, the matrix kernels' test x86 runs: every y[t][r] of
#     the neon and dotprod matrix kernels bit-identical to the same level's
#     one-row kernel (1-3 and 4..533 tokens, ragged rows, odd row splits,
#     NaN/inf, every byte value, nothing written outside the rows), and
#     g4_matmul batched = one by one = g4_vec_dot.
# Also compiles (-c only) every engine source of libgemma4 except media
# (src/{gguf,kernels,model,text}/*.c) for AArch64 with -Werror, so x86-only
# code outside its guards shows up here.
# Runs: -cpu max (SDOT present: levels neon and dotprod), -cpu cortex-a57
# (ARMv8.0, no SDOT: the probe must fall back to neon), and G4_CPU=scalar /
# neon on -cpu max; test_gemm once more under ASan + UBSan (-cpu max).
# Prints "SKIP: ..." when the cross compiler or qemu is missing
# (scripts/install-deps.sh installs both).
set -u
B=$(cd "${1:?usage: tests/arm/cross-neon.sh BUILD_DIR}" && pwd)
S=$(cd "$(dirname "$0")/../.." && pwd)
CC=${G4_CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${G4_QEMU_AARCH64:-}
if [ -z "$QEMU" ]; then
    for q in qemu-aarch64 qemu-aarch64-static; do
        if command -v "$q" >/dev/null 2>&1; then QEMU=$q; break; fi
    done
fi
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not installed (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    exit 0
fi
if [ -z "$QEMU" ]; then
    echo "SKIP: qemu-aarch64 not installed (apt-get install qemu-user)"
    exit 0
fi
# shellcheck source=tests/lib.sh
. "$S/tests/lib.sh"
T=$(mktemp -d "$B/arm-cross.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

KSRC=(src/kernels/quant.c src/kernels/dispatch.c src/kernels/simd_arm.c src/kernels/simd_x86.c src/kernels/gemm_x86.c
      src/kernels/gemm_arm.c tests/testutil.c)
build() { # OUT DRIVER [MORE SOURCES]: warnings are errors (the project builds with zero)
    local out=$1 drv=$2; shift 2
    (cd "$S" && "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -static -Wall -Wextra -Wshadow -Werror \
        -Isrc -Itests -o "$out" "$drv" "${KSRC[@]}" "$@" -lm -pthread) >"$T/cc.log" 2>&1
}
if build "$T/test_simd" tests/test_simd.c; then ok; else bad "cross-compiling test_simd: $(head -c 2000 "$T/cc.log")"; fi
if build "$T/test_neon" tests/arm/test_neon.c; then ok; else bad "cross-compiling test_neon: $(head -c 2000 "$T/cc.log")"; fi
if build "$T/test_gemm" tests/test_gemm.c src/kernels/ops.c src/kernels/threadpool.c; then ok
else bad "cross-compiling test_gemm: $(head -c 2000 "$T/cc.log")"; fi
nobj=0
for f in "$S"/src/gguf/*.c "$S"/src/kernels/*.c "$S"/src/model/*.c "$S"/src/text/*.c; do
    if "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -Wall -Wextra -Wshadow -Werror \
        -I"$S/src" -I"$S/include" -c "$f" -o "$T/obj.o" >"$T/cc.log" 2>&1; then
        nobj=$((nobj + 1))
    else
        bad "compiling ${f#"$S"/} for AArch64: $(head -c 2000 "$T/cc.log")"
    fi
done
echo "  $nobj engine sources compile for AArch64 without warnings"
[ "$nobj" -gt 10 ] && ok || bad "too few engine sources found ($nobj)"
if [ "$fail" != 0 ]; then
    echo "cross-neon: $pass passed, $fail failed"
    exit 1
fi

# run WHAT CPU [ENV=VAL] -- PROG ARGS...: passes when the program exits 0
run() {
    local what=$1 cpu=$2; shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    if env "${envs[@]}" "$QEMU" -cpu "$cpu" "$@" >"$T/out" 2>&1; then
        ok
        grep -E "CPU level|detected|passed" "$T/out" | sed "s/^/  [$what] /"
    else
        bad "$what: $(tail -c 3000 "$T/out")"
    fi
}
run "max simd" max G4_CPU= -- "$T/test_simd"
grep -q "dotprod vec_dot q4_K : ok" "$T/out" && ok || bad "max: the dotprod kernels were not tested"
run "max neon" max G4_CPU= -- "$T/test_neon" dotprod dotprod
run "max gemm" max G4_CPU= -- "$T/test_gemm"
grep -q "neon   gemm q4_0 : ok" "$T/out" && grep -q "dotprod gemm q6_K : ok" "$T/out" \
    && grep -q "g4_matmul q4_K  (dotprod): ok" "$T/out" && ok || bad "max: the ARM matrix kernels were not tested"
run "max gemm G4_CPU=neon" max G4_CPU=neon -- "$T/test_gemm"
grep -q "g4_matmul q6_K  (neon): ok" "$T/out" && ok || bad "max G4_CPU=neon: g4_matmul did not run the neon kernels"
run "a57 simd" cortex-a57 G4_CPU= -- "$T/test_simd"
grep -q "neon   vec_dot q6_K : ok" "$T/out" && ok || bad "cortex-a57: the neon kernels were not tested"
run "a57 neon" cortex-a57 G4_CPU= -- "$T/test_neon" neon neon
run "a57 gemm" cortex-a57 G4_CPU= -- "$T/test_gemm"
grep -q "neon   gemm q5_K : ok" "$T/out" && grep -q "g4_matmul q8_0  (neon): ok" "$T/out" \
    && ok || bad "cortex-a57: the neon matrix kernels were not tested"
run "max G4_CPU=scalar" max G4_CPU=scalar -- "$T/test_neon" dotprod scalar
run "max G4_CPU=neon" max G4_CPU=neon -- "$T/test_neon" dotprod neon
# an x86 level is not this build's: a warning, the detected level stays
run "max G4_CPU=avx2" max G4_CPU=avx2 -- "$T/test_neon" dotprod dotprod
grep -q "G4_CPU=avx2: this CPU lacks it" "$T/out" && ok || bad "G4_CPU=avx2 on ARM: no warning"
# test_gemm again under ASan + UBSan (dynamically linked: the sanitizer
# runtimes do not link statically; qemu finds the AArch64 libraries under
# QEMU_LD_PREFIX): a load past a row's last block or a store outside y
# fails here even where the bits come out right.  LeakSanitizer cannot
# stop the world under qemu-user, hence detect_leaks=0.
SYSROOT=${G4_CROSS_SYSROOT:-/usr/aarch64-linux-gnu}
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all)
echo 'int main(void) { return 0; }' >"$T/san.c"
if ! "$CC" "${SAN[@]}" -o "$T/san" "$T/san.c" >"$T/cc.log" 2>&1; then
    echo "  SKIP: test_gemm under ASan+UBSan: no AArch64 sanitizer runtime ($(head -c 300 "$T/cc.log"))"
elif (cd "$S" && "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -g "${SAN[@]}" -Wall -Wextra -Wshadow \
    -Werror -Isrc -Itests -o "$T/test_gemm_san" tests/test_gemm.c "${KSRC[@]}" src/kernels/ops.c \
    src/kernels/threadpool.c -lm -pthread) >"$T/cc.log" 2>&1; then
    run "max gemm asan+ubsan" max QEMU_LD_PREFIX="$SYSROOT" ASAN_OPTIONS=detect_leaks=0 -- "$T/test_gemm_san"
else
    bad "cross-compiling test_gemm with ASan+UBSan: $(head -c 2000 "$T/cc.log")"
fi

echo "cross-neon: $pass passed, $fail failed"
[ "$fail" = 0 ]
