#!/bin/bash
# resize-vs-pillow.sh BUILD_DIR - g4_image_resize against Pillow 9.4's
# Image.resize((w, h), Image.BICUBIC), and g4_image_fit against the
# reference policy of spec §2.2 re-computed in Python, on the cases of
# tests/media/pillow_resize.py: 1x1, 1xN, Nx1, one-axis, up- and
# down-scaling, the worked sizes of spec §2.4, random sizes.  Every value
# must be within 1 of Pillow's (the count of bit-exact cases is printed).
# G4_MEDIA_QUICK=1 (the sanitizer build): smaller images, fewer cases.
# Ends with "N passed, N failed".
set -u
B=${1:?usage: resize-vs-pillow.sh BUILD_DIR}
TOOL=$B/test_image
PY=/usr/bin/python3
if ! $PY -c 'import PIL, numpy' 2>/dev/null; then
    echo "SKIP: $PY lacks Pillow or numpy (Debian: python3-pil python3-numpy)"
    exit 0
fi
T=$(mktemp -d /tmp/g4-media-resize.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mode=
[ "${G4_MEDIA_QUICK:-0}" = 1 ] && mode=quick
if $PY "$(dirname "$0")/pillow_resize.py" "$T" $mode >"$T/gen.log" 2>&1; then ok; else bad "pillow_resize.py: $(tail -3 "$T/gen.log")"; fi
cat "$T/gen.log"

if "$TOOL" resize-cmp "$T/resize" "$T" >"$T/cmp.log" 2>&1; then ok; else bad "resize-cmp: $(grep FAIL "$T/cmp.log" | head -20)"; fi
grep -E '^(near|resize-cmp:)' "$T/cmp.log"
if "$TOOL" fit-cmp "$T/fit" >"$T/fit.log" 2>&1; then ok; else bad "fit-cmp: $(grep FAIL "$T/fit.log" | head -20)"; fi
grep '^fit-cmp:' "$T/fit.log"

echo "resize-vs-pillow: $pass passed, $fail failed"
[ "$fail" = 0 ]
