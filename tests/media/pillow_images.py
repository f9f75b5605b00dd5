#!/usr/bin/python3
"""pillow_images.py OUTDIR - image files of every supported kind, each with
its reference pixels as decoded by Pillow (Image.open(f).convert("RGB")),
for tests/media/decode-vs-pillow.sh.

Writes OUTDIR/<name> and OUTDIR/<name>.rgb (raw RGB, top row first) and
OUTDIR/manifest lines "NAME W H NAME.rgb TOLERANCE".  Files Pillow cannot
write (16-bit RGB, Adam7-interlaced, 2-bit PNG; GIF frames placed inside or
past the logical screen, with local colour maps) are written here from the
formats' definitions; Pillow still decodes them for the reference.  Files
our decoder must refuse go to OUTDIR/refuse lines "NAME PATTERN".
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

OUT = sys.argv[1]
rng = np.random.RandomState(20240607)
manifest = []
refuse = []


def picture(w, h, channels=3):
    """smooth gradients, a hard edge and some noise: realistic for JPEG,
    and every value range gets used"""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        127 + 120 * np.sin(x / max(w, 1) * 6.3 + c) * np.cos(y / max(h, 1) * 4.1 - c) for c in range(channels)
    ]
    a = np.stack(planes, axis=-1)
    a[(x > w / 2) & (y < h / 3)] = 250
    a += rng.normal(0, 12, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def add(name, data, ref, tol=0):
    """data: the file's bytes; ref: HxWx3 uint8 expected pixels (None:
    Pillow's decoding of the file)"""
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    if ref is None:
        ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    ref = np.ascontiguousarray(ref, dtype=np.uint8)
    assert ref.ndim == 3 and ref.shape[2] == 3
    with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
        f.write(ref.tobytes())
    manifest.append("%s %d %d %s.rgb %d" % (name, ref.shape[1], ref.shape[0], name, tol))


def saved(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


# ---- JPEG (libjpeg-turbo on both sides: identical pixels expected) ----
rgb = Image.fromarray(picture(67, 45))
big = Image.fromarray(picture(640, 480))
add("q90-420.jpg", saved(big, "JPEG", quality=90), None)
add("q95-444.jpg", saved(rgb, "JPEG", quality=95, subsampling=0), None)
add("q75-422.jpg", saved(rgb, "JPEG", quality=75, subsampling=1), None)
add("progressive.jpg", saved(big, "JPEG", quality=85, progressive=True), None)
add("optimized.jpg", saved(rgb, "JPEG", quality=80, optimize=True), None)
add("gray.jpg", saved(rgb.convert("L"), "JPEG", quality=90), None)
add("cmyk.jpg", saved(Image.fromarray(picture(33, 21, 4), "CMYK"), "JPEG", quality=92), None)
add("odd-17x13.jpg", saved(Image.fromarray(picture(17, 13)), "JPEG"), None)
add("one-1x1.jpg", saved(Image.fromarray(picture(1, 1)), "JPEG"), None)

# ---- PNG written by Pillow ----
rgba = Image.fromarray(picture(67, 45, 4), "RGBA")
add("rgb.png", saved(rgb, "PNG"), None)
add("rgba.png", saved(rgba, "PNG"), None)
add("gray.png", saved(rgb.convert("L"), "PNG"), None)
add("gray-alpha.png", saved(rgba.convert("LA"), "PNG"), None)
add("bilevel.png", saved(rgb.convert("1"), "PNG"), None)
pal = rgb.quantize(colors=200)
add("palette.png", saved(pal, "PNG"), None)
add("palette-4bit.png", saved(rgb.quantize(colors=16), "PNG", bits=4), None)
add("palette-trns.png", saved(pal, "PNG", transparency=3), None)
add("rgb-trns.png", saved(rgb, "PNG", transparency=(10, 20, 30)), None)
add("gray-trns.png", saved(rgb.convert("L"), "PNG", transparency=7), None)


# ---- PNG written here: 16-bit, 2-bit, Adam7 ----
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(samples, depth, ctype, interlace=False, plte=None, trns=None):
    """samples: HxWxC array of sample values (C = 1..4), packed big-endian
    at `depth` bits with filter type 0 on every row"""
    h, w, c = samples.shape

    def rows(a):
        out = b""
        for r in a:
            if depth == 16:
                line = r.astype(">u2").tobytes()
            elif depth == 8:
                line = r.astype(np.uint8).tobytes()
            else:
                bits = "".join(format(int(v), "0%db" % depth) for v in r.reshape(-1))
                bits += "0" * (-len(bits) % 8)
                line = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            out += b"\0" + line
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += rows(sub)
    else:
        raw = rows(samples)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if plte is not None:
        data += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    return data + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


s16 = rng.randint(0, 65536, (23, 29, 4)).astype(np.int64)
hi = (s16 >> 8).astype(np.uint8)
add("rgb16.png", png(s16[:, :, :3], 16, 2), None)
add("rgba16.png", png(s16, 16, 6), None)
add("gray-alpha16.png", png(s16[:, :, :2], 16, 4), None)
# 16-bit grey: Pillow opens it as 32-bit "I" and clips on convert("RGB"),
# so the reference is the high byte of the samples we wrote.
add("gray16.png", png(s16[:, :, :1], 16, 0), np.repeat(hi[:, :, :1], 3, axis=2))
g2 = rng.randint(0, 4, (11, 13, 1))
add("gray2.png", png(g2, 2, 0), np.repeat((g2 * 85).astype(np.uint8), 3, axis=2))
g4 = rng.randint(0, 16, (11, 13, 1))
add("gray4.png", png(g4, 4, 0), np.repeat((g4 * 17).astype(np.uint8), 3, axis=2))
p2 = rng.randint(0, 4, (9, 14, 1))
plte = [9, 8, 7, 200, 100, 50, 0, 255, 0, 1, 2, 250]
add("palette2.png", png(p2, 2, 3, plte=plte), np.array(plte, np.uint8).reshape(4, 3)[p2[:, :, 0]])
s8 = picture(37, 19)
add("rgb-adam7.png", png(s8, 8, 2, interlace=True), s8)
add("rgba16-adam7.png", png(s16, 16, 6, interlace=True), hi[:, :, :3])
add("palette-adam7.png", png(p2, 2, 3, interlace=True, plte=plte), None)
add("tiny-1x1.png", png(s8[:1, :1], 8, 2), s8[:1, :1])

# ---- WebP ----
add("lossless.webp", saved(rgb, "WEBP", lossless=True), None)
add("lossless-alpha.webp", saved(rgba, "WEBP", lossless=True, exact=True), None)
add("lossy.webp", saved(big, "WEBP", quality=80), None)
add("lossy-alpha.webp", saved(rgba, "WEBP", quality=80), None)
frames = [Image.fromarray(picture(20, 16)) for _ in range(3)]
anim = io.BytesIO()
frames[0].save(anim, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
with open(os.path.join(OUT, "animated.webp"), "wb") as f:
    f.write(anim.getvalue())
refuse.append("animated.webp animated")

# ---- GIF written by Pillow ----
add("pillow.gif", saved(pal, "GIF"), None)   # interlaced (Pillow's default)
add("pillow-flat.gif", saved(pal, "GIF", interlace=False), None)
add("pillow-gray.gif", saved(rgb.convert("L"), "GIF"), None)
add("pillow-trns.gif", saved(pal, "GIF", transparency=5), None)
gframes = [Image.fromarray(picture(30, 20)).quantize(colors=64) for _ in range(3)]
add("animated.gif", saved(gframes[0], "GIF", save_all=True, append_images=gframes[1:], duration=80), None)


# ---- GIF written here ----
def lzw_literal(indices):
    """LZW data of 8-bit indices without compression: a clear code every 250
    codes keeps the code width at 9 bits"""
    codes = []
    for i in range(0, len(indices), 250):
        codes.append(256)
        codes.extend(int(v) for v in indices[i:i + 250])
    codes.append(257)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += 9
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return b"\x08" + blocks + b"\x00"


def gif(sw, sh, gpal, frame, left, top, lpal=None, trans=None, interlace=False):
    d = b"GIF89a" + struct.pack("<HH", sw, sh)
    d += bytes([0xF7 if gpal is not None else 0x70, 0, 0])
    if gpal is not None:
        d += bytes(gpal)
    if trans is not None:
        d += b"\x21\xF9\x04\x01\x00\x00" + bytes([trans]) + b"\x00"
    fh, fw = frame.shape
    d += b"\x2C" + struct.pack("<HHHH", left, top, fw, fh)
    d += bytes([(0x87 if lpal is not None else 0) | (0x40 if interlace else 0)])
    if lpal is not None:
        d += bytes(lpal)
    order = list(range(fh))
    if interlace:
        order = list(range(0, fh, 8)) + list(range(4, fh, 8)) + list(range(2, fh, 4)) + list(range(1, fh, 2))
    d += lzw_literal(np.concatenate([frame[r] for r in order]))
    return d + b"\x3B"


gpal = list(rng.randint(0, 256, 768))
lpal = list(rng.randint(0, 256, 768))
fr = rng.randint(0, 256, (9, 12))
add("frame-inside.gif", gif(20, 15, gpal, fr, 3, 4), None)
add("frame-inside-trns.gif", gif(20, 15, gpal, fr, 3, 4, trans=int(fr[2, 2])), None)
add("frame-local.gif", gif(20, 15, gpal, fr, 0, 0, lpal=lpal), None)
add("frame-past-screen.gif", gif(10, 10, gpal, fr, 5, 5), None)
add("frame-interlaced.gif", gif(12, 9, gpal, fr, 0, 0, interlace=True), None)
add("no-colour-map.gif", gif(12, 9, None, fr, 0, 0), None)

# ---- BMP ----
add("rgb.bmp", saved(rgb, "BMP"), None)
add("rgba32.bmp", saved(rgba, "BMP"), None)
add("gray8.bmp", saved(rgb.convert("L"), "BMP"), None)
add("palette8.bmp", saved(pal, "BMP"), None)
add("bilevel.bmp", saved(rgb.convert("1"), "BMP"), None)
# indices past a 4-entry palette
small = Image.fromarray(np.array([[0, 1, 2, 3, 1, 0]], np.uint8), "P")
small.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
d = bytearray(saved(small, "BMP"))
off = struct.unpack("<I", d[10:14])[0]
d[off + 3], d[off + 4] = 200, 5
add("palette-overflow.bmp", bytes(d), None)
# top-down 24-bit: Pillow writes bottom-up, so flip the rows and the sign
d = bytearray(saved(rgb, "BMP"))
off = struct.unpack("<I", d[10:14])[0]
w, h = rgb.size
stride = (w * 3 + 3) // 4 * 4
rows_ = [bytes(d[off + i * stride:off + (i + 1) * stride]) for i in range(h)]
d[off:] = b"".join(reversed(rows_))
d[22:26] = struct.pack("<i", -h)
add("top-down.bmp", bytes(d), None)

with open(os.path.join(OUT, "manifest"), "w") as f:
    f.write("\n".join(manifest) + "\n")
with open(os.path.join(OUT, "refuse"), "w") as f:
    f.write("\n".join(refuse) + "\n")
print("%d files" % len(manifest))
