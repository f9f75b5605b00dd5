#!/bin/bash
# decode-vs-pillow.sh BUILD_DIR - g4_image_decode against Pillow, the decoder
# behind Hugging Face's image processor: JPEG, PNG, WebP, GIF and BMP files of
# every kind (tests/media/pillow_images.py) must decode to exactly Pillow's
# Image.open(f).convert("RGB") pixels; truncated, damaged, unknown, empty,
# missing and oversized inputs must give one clear error line naming the
# format.  Ends with "N passed, N failed".
set -u
B=${1:?usage: decode-vs-pillow.sh BUILD_DIR}
TOOL=$B/test_image
PY=/usr/bin/python3
if ! $PY -c 'import PIL, numpy' 2>/dev/null; then
    echo "SKIP: $PY lacks Pillow or numpy (Debian: python3-pil python3-numpy)"
    exit 0
fi
T=$(mktemp -d /tmp/g4-media-decode.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
D=$T/img
mkdir -p "$D"

if $PY "$(dirname "$0")/pillow_images.py" "$D" >"$T/gen.log" 2>&1; then ok; else bad "pillow_images.py: $(tail -3 "$T/gen.log")"; fi

# every file, pixel for pixel
if "$TOOL" decode-cmp "$D/manifest" "$D" >"$T/cmp.log" 2>&1; then ok; else bad "decode-cmp: $(grep -v '^ok' "$T/cmp.log")"; fi
grep '^decode-cmp:' "$T/cmp.log"

fmt_of() {
    case $1 in
    *.jpg) echo JPEG ;; *.png) echo PNG ;; *.webp) echo WebP ;; *.gif) echo GIF ;; *.bmp) echo BMP ;;
    esac
}

# files we refuse on purpose
while read -r name pat; do
    [ -n "$name" ] || continue
    expect_err 1 "$pat" "refuse $name" -- "$TOOL" decode "$D/$name"
done <"$D/refuse"

# truncated copies: one error line that names the format, never a picture
# (a cut after the first frame of an animation leaves that frame whole)
while read -r name _; do
    f=$D/$name
    n=$(stat -c %s "$f")
    fmt=$(fmt_of "$name")
    cuts="$((n / 2)) 20"
    case $name in animated*) cuts="$((n / 5)) 20" ;; *) cuts="$cuts $((n * 3 / 4))" ;; esac
    for c in $cuts; do
        head -c "$c" "$f" >"$T/cut"
        expect_err 1 "$fmt" "$name cut to $c of $n bytes" -- "$TOOL" decode "$T/cut"
    done
done <"$D/manifest"

# damaged data: PNG has checksums, so flipped bytes must be refused; JPEG,
# WebP, GIF and BMP have none, so damage may decode to other pixels (as in
# Pillow) -- but never crash, hang or print more than one error line.
$PY - "$D" "$T" <<'PYEOF'
import random, sys
src, out = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
for name in ["q90-420.jpg", "progressive.jpg", "rgb.png", "palette-adam7.png", "lossy.webp",
             "lossless.webp", "pillow.gif", "frame-inside.gif", "rgb.bmp", "palette8.bmp"]:
    d = bytes(open("%s/%s" % (src, name), "rb").read())
    for k in range(12):
        b = bytearray(d)
        if k == 0:   # a run of flipped bytes in the middle
            for i in range(len(b) // 2, min(len(b), len(b) // 2 + 64)):
                b[i] ^= 0x5A
        else:        # a few random bytes anywhere past the signature
            for _ in range(1 + k % 4):
                b[rnd.randrange(8, len(b))] = rnd.randrange(256)
        open("%s/dmg-%d-%s" % (out, k, name), "wb").write(b)
PYEOF
for f in "$T"/dmg-*; do
    name=${f##*/dmg-}
    "$TOOL" decode "$f" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    case $rc in
    0) ok ;;
    1) if [ "$(grep -c . "$T/err")" = 1 ] && grep -q "$(fmt_of "$name")" "$T/err"; then ok; else bad "${f##*/}: error: $(cat "$T/err")"; fi ;;
    *) bad "${f##*/}: exit $rc: $(head -c 300 "$T/err")" ;;
    esac
done
expect_err 1 "PNG" "rgb.png with damaged data" -- "$TOOL" decode "$T/dmg-0-rgb.png"

# the pixel cap, from the header: 640x480 is 307200 pixels
expect_err 1 "exceeds the limit of 307199 pixels" "pixel cap" -- "$TOOL" decode "$D/q90-420.jpg" 307199
if "$TOOL" decode "$D/q90-420.jpg" 307200 >"$T/out" 2>&1 && [ "$(cat "$T/out")" = "640 480" ]; then ok; else bad "cap = size: $(cat "$T/out")"; fi

# not an image at all
$PY -c 'from PIL import Image; Image.new("RGB", (8, 8)).save("'"$T"'/x.tiff")'
expect_err 1 "unrecognised format" "TIFF" -- "$TOOL" decode "$T/x.tiff"
head -c 4096 /dev/urandom | tr '\377\211GBR' 'abcde' >"$T/garbage"
expect_err 1 "unrecognised format" "garbage" -- "$TOOL" decode "$T/garbage"
: >"$T/empty"
expect_err 1 "empty" "empty file" -- "$TOOL" decode "$T/empty"
expect_err 1 "No such file" "missing file" -- "$TOOL" decode "$T/does-not-exist.png"
expect_err 1 "directory" "directory" -- "$TOOL" decode "$T"

echo "decode-vs-pillow: $pass passed, $fail failed"
[ "$fail" = 0 ]
