#!/usr/bin/env bash
# compare-llama.sh - gemma4.c next to llama.cpp on the same GGUF files, same
# threads, engines alternated in one run; prints ours/llama.cpp ratios and
# decode as a share of the memory-read roofline.  docs/performance.md.
#
#   bench/compare-llama.sh [options]
#     -p N        prompt tokens of the pp test (default 512)
#     -n N        generated tokens of the tg test (default 128)
#     -r N        repetitions per test inside each tool (default 3)
#     -t N        threads of both engines and of the membw probe (default 2)
#     --rounds N  how many times to alternate ours, llama.cpp (default 1)
#     --full      also the 48-layer 12B-layout models (q4_0 6.5 GiB, q4_k_m 6.9 GiB; ~2 min each to write)
#     --models "A B"  only these model keys (l12-q4_0 l12-q4_k_m full-q4_0 full-q4_k_m)
#     --no-build  do not run `make` first
#     --membw-mib N   size of the bandwidth probe's buffer (default 1024)
#
# Steps: make; scripts/get-llama-oracle.sh (the pinned llama.cpp, once);
# models written by `gemma4 make-test-model` into $G4_BENCH_DIR (default
# ~/.cache/gemma4/bench) when missing: the 12B layout cut to 12 layers in
# q4_0 (Q6_K embedding, like Google's file) and q4_k_m; build/membw measures
# read bandwidth (GB/s); then per model, per round: `gemma4 bench --json` and
# `llama-ref --bench` (pp: -p ids in batches of 512; tg: -n ids one per call;
# both from an empty cache, a warm-up pass first, f16 KV).
#
# Roofline: weight bytes (gemma4 info's sum of tensor bytes, all read once
# per generated token) / the measured GB/s = the best possible tg tokens/s;
# "tg % roofline" = measured tg tokens/s / that.
#
# A quick run: bench/compare-llama.sh -p 64 -n 16 -r 1 --models l12-q4_0
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$SRC/build}
P=512 N=128 R=3 T=2 ROUNDS=1 FULL=0 BUILD_IT=1 MEMBW_MIB=1024 MODELS=""
die() { echo "compare-llama: $*" >&2; exit 2; }
int() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1: '$2' is not a non-negative integer"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -p) int "$1" "${2-}"; P=$2; shift 2 ;;
        -n) int "$1" "${2-}"; N=$2; shift 2 ;;
        -r) int "$1" "${2-}"; R=$2; shift 2 ;;
        -t) int "$1" "${2-}"; T=$2; shift 2 ;;
        --rounds) int "$1" "${2-}"; ROUNDS=$2; shift 2 ;;
        --membw-mib) int "$1" "${2-}"; MEMBW_MIB=$2; shift 2 ;;
        --full) FULL=1; shift ;;
        --models) MODELS=${2-}; shift 2 ;;
        --no-build) BUILD_IT=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (--help)" ;;
    esac
done
[ "$R" -ge 1 ] && [ "$T" -ge 1 ] && [ "$ROUNDS" -ge 1 ] || die "-r, -t and --rounds must be at least 1"
[ "$P" -gt 0 ] || [ "$N" -gt 0 ] || die "-p and -n are both 0"
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"

if [ "$BUILD_IT" = 1 ]; then make -C "$SRC" BUILD="$B" >&2; fi
for x in gemma4 llama-ref membw; do [ -x "$B/$x" ] || die "$B/$x is missing (make)"; done
LIB=$(bash "$SRC/scripts/get-llama-oracle.sh") || exit 1

DIR=${G4_BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/bench}
mkdir -p "$DIR"
[ -n "$MODELS" ] || { MODELS="l12-q4_0 l12-q4_k_m"; [ "$FULL" = 1 ] && MODELS+=" full-q4_0 full-q4_k_m"; }
model_args() {
    case "$1" in
        l12-q4_0) echo "--preset 12b --layers 12 --type q4_0" ;;
        l12-q4_k_m) echo "--preset 12b --layers 12 --type q4_k_m" ;;
        full-q4_0) echo "--preset 12b --type q4_0" ;;
        full-q4_k_m) echo "--preset 12b --type q4_k_m" ;;
        *) return 1 ;;
    esac
}
for k in $MODELS; do
    model_args "$k" >/dev/null || die "unknown model key '$k' (l12-q4_0 l12-q4_k_m full-q4_0 full-q4_k_m)"
    f="$DIR/g12-$k.gguf"
    if [ ! -s "$f" ]; then
        echo "compare-llama: writing $f ($(model_args "$k"))" >&2
        # shellcheck disable=SC2046
        "$B/gemma4" make-test-model -q $(model_args "$k") -o "$f.tmp" >&2
        mv "$f.tmp" "$f"
    fi
done

W=$(mktemp -d /tmp/g4-compare.XXXXXX)
trap 'rm -rf "$W"' EXIT
echo "compare-llama: membw probe (${MEMBW_MIB} MiB, $T threads)" >&2
"$B/membw" -s "$MEMBW_MIB" -t "$T" -k 5 --json >"$W/membw.json"

for k in $MODELS; do
    f="$DIR/g12-$k.gguf"
    "$B/gemma4" info "$f" >"$W/$k.info"
    for ((round = 1; round <= ROUNDS; round++)); do
        echo "compare-llama: $k round $round: gemma4.c" >&2
        "$B/gemma4" bench -m "$f" -p "$P" -n "$N" -r "$R" -t "$T" --json >"$W/$k.ours.$round.json"
        echo "compare-llama: $k round $round: llama.cpp" >&2
        "$B/llama-ref" --lib "$LIB" -m "$f" --bench -p "$P" -n "$N" -r "$R" --threads "$T" >"$W/$k.llama.$round.json"
    done
done

if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    commit=$(git -C "$SRC" log -1 --oneline)
    git -C "$SRC" diff --quiet HEAD || commit+=" (+ uncommitted changes)"
else
    commit="? (not a git checkout)"
fi
echo "commit: $commit; G4_CPU=${G4_CPU-(unset)}"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1), $(nproc) online; threads $T"
python3 - "$W" "$ROUNDS" "$MODELS" "$P" "$N" <<'EOF'
import json, re, sys
w, rounds, models, p, n = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5])
bw = json.load(open(f"{w}/membw.json"))
gbps = bw["best_gbps"]
print(f"membw: {gbps:.2f} GB/s (best of {bw['runs']}, {bw['mib']} MiB, {bw['threads']} threads)")
def mean(xs): return sum(xs) / len(xs) if xs else None
def get(res, key):
    v = [r[key]["tps_mean"] for r in res if r.get(key)]
    return mean(v)
def fmt(x, spec=".2f"): return "-" if x is None else format(x, spec)
def ratio(a, b): return None if a is None or b is None or b == 0 else a / b
print()
print(f"| model | engine | pp{p} tok/s | tg{n} tok/s | tg % roofline | load s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
summary = []
for k in models:
    info = open(f"{w}/{k}.info").read()
    wb = int(re.search(r"^weight bytes:\s+(\d+)", info, re.M).group(1))
    roof = gbps * 1e9 / wb
    row = {}
    for eng in ("ours", "llama"):
        res = [json.load(open(f"{w}/{k}.{eng}.{r}.json")) for r in range(1, rounds + 1)]
        pp, tg = get(res, "pp"), get(res, "tg")
        rss = mean([r["peak_rss_bytes"] / 1048576 for r in res])
        load = mean([r["load_s"] for r in res])
        row[eng] = (pp, tg, rss)
        name = "gemma4.c" if eng == "ours" else "llama.cpp"
        pct = None if tg is None else 100 * tg / roof
        print(f"| {k} ({wb / 2**30:.2f} GiB weights) | {name} | {fmt(pp)} | {fmt(tg)} | {fmt(pct, '.1f')} | {fmt(load, '.3f')} | {fmt(rss, '.0f')} |")
    summary.append((k, roof, [ratio(row["ours"][i], row["llama"][i]) for i in range(3)]))
print()
print(f"| model | roofline tg tok/s | ours/llama.cpp pp{p} | tg{n} | peak RSS |")
print("|---|---|---|---|---|")
for k, roof, r in summary:
    print(f"| {k} | {roof:.2f} | {fmt(r[0], '.3f')} | {fmt(r[1], '.3f')} | {fmt(r[2], '.3f')} |")
EOF
