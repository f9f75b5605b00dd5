#!/usr/bin/python3
"""pillow_resize.py OUTDIR [quick] - resize cases and their results from
Pillow (Image.resize((w, h), Image.BICUBIC) on RGB images), and the
reference resize policy (multimodal spec §2.2) computed here in Python
doubles, for tests/media/resize-vs-pillow.sh.

OUTDIR/resize lines: "SRC.rgb SW SH DW DH PIL.rgb" (raw RGB files)
OUTDIR/fit lines:    "W H M OW OH" (OW = OH = 0: the policy refuses)
"quick" (the sanitizer build) drops the largest images and most random cases.
"""
import math
import os
import sys

import numpy as np
from PIL import Image

OUT = sys.argv[1]
QUICK = len(sys.argv) > 2 and sys.argv[2] == "quick"
rng = np.random.RandomState(4242)


def content(w, h, kind):
    if kind == "noise":   # the most ringing, hence the most clipping
        return rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "edges":   # checkerboard of saturated colours
        c = ((x // 3 + y // 2) % 2)[..., None]
        return (c * np.array([255, 0, 255]) + (1 - c) * np.array([0, 255, 10])).astype(np.uint8)
    g = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 128 + 127 * np.sin((x + y) / 5.0)], -1)
    return np.clip(g + rng.normal(0, 4, g.shape), 0, 255).astype(np.uint8)


cases = []
# tiny, thin and one-axis cases
for sw, sh, dw, dh in [(1, 1, 1, 1), (1, 1, 3, 2), (1, 1, 48, 48), (2, 2, 1, 1), (2, 1, 1, 1), (1, 7, 1, 3),
                       (7, 1, 3, 1), (1, 9, 5, 1), (9, 1, 1, 5), (1, 40, 96, 1), (3, 5, 7, 2), (5, 3, 5, 9),
                       (9, 4, 2, 4), (4, 9, 4, 2), (2, 3, 200, 1), (300, 1, 7, 1), (1, 300, 1, 7), (3, 3, 2, 2)]:
    cases.append((sw, sh, dw, dh))
# the worked sizes of spec §2.4 (HF columns)
worked = [(224, 224, 768, 768), (224, 224, 384, 384), (640, 480, 912, 672), (640, 480, 432, 336),
          (768, 768, 384, 384), (1024, 768, 912, 672), (1920, 1080, 1056, 576), (1920, 1080, 528, 288),
          (900, 3, 13440, 48), (900, 3, 3360, 48), (900, 3, 27792, 48)]
if not QUICK:
    # 4000x3000 -> 912x672 costs seconds of file writing; its two scale
    # factors (4.39 both ways) are kept by strips of a tenth of the area.
    worked += [(2000, 1500, 912, 672), (4000, 300, 912, 67), (300, 4000, 68, 912),
               (1920, 1080, 2112, 1200), (224, 224, 1584, 1584)]
else:
    # the same ratios, a tenth of the size
    worked = [(max(1, a // 10), max(1, b // 10), max(1, c // 10), max(1, d // 10)) for a, b, c, d in worked]
cases += worked
# random sizes and aspect ratios, up and down
for _ in range(25 if QUICK else 120):
    sw, sh = int(rng.randint(1, 260)), int(rng.randint(1, 260))
    if rng.rand() < 0.3:
        dw, dh = int(rng.randint(1, 40)), int(rng.randint(1, 40))
    else:
        dw, dh = int(rng.randint(1, 400)), int(rng.randint(1, 400))
    cases.append((sw, sh, dw, dh))

lines = []
kinds = ["noise", "smooth", "edges"]
for i, (sw, sh, dw, dh) in enumerate(cases):
    src = content(sw, sh, kinds[i % 3])
    im = Image.fromarray(src, "RGB").resize((dw, dh), Image.BICUBIC)
    out = np.asarray(im)
    assert out.shape == (dh, dw, 3)
    with open(os.path.join(OUT, "src%d.rgb" % i), "wb") as f:
        f.write(src.tobytes())
    with open(os.path.join(OUT, "pil%d.rgb" % i), "wb") as f:
        f.write(np.ascontiguousarray(out).tobytes())
    lines.append("src%d.rgb %d %d %d %d pil%d.rgb" % (i, sw, sh, dw, dh, i))
with open(os.path.join(OUT, "resize"), "w") as f:
    f.write("\n".join(lines) + "\n")


def fit(W, H, M):
    """spec §2.2, written from the spec's pseudo-code"""
    p, k = 16, 3
    target = M * k * k * p * p
    f = math.sqrt(target / (H * W))
    h = math.floor(f * H / 48) * 48
    w = math.floor(f * W / 48) * 48
    if h == 0 and w == 0:
        return 0, 0
    max_side = M * 48
    if h == 0:
        h = 48
        w = min(math.floor(W / H) * 48, max_side)
    elif w == 0:
        w = 48
        h = min(math.floor(H / W) * 48, max_side)
    if h * w > target:
        return 0, 0
    return w, h


fl = []
for _ in range(3000):
    M = int(rng.choice([70, 140, 280, 560, 1120]))
    r = rng.rand()
    if r < 0.4:
        W, H = int(rng.randint(1, 5000)), int(rng.randint(1, 5000))
    elif r < 0.6:   # extreme aspect ratios
        W, H = int(rng.randint(1, 100000)), int(rng.randint(1, 40))
        if rng.rand() < 0.5:
            W, H = H, W
    elif r < 0.8:   # multiples of 48 and their neighbours: floor() edges
        W, H = 48 * int(rng.randint(1, 60)) + int(rng.randint(-1, 2)), 48 * int(rng.randint(1, 60)) + int(rng.randint(-1, 2))
        W, H = max(W, 1), max(H, 1)
    else:
        W, H = int(rng.randint(1, 2**31)), int(rng.randint(1, 2**31))
    w, h = fit(W, H, M)
    fl.append("%d %d %d %d %d" % (W, H, M, w, h))
with open(os.path.join(OUT, "fit"), "w") as f:
    f.write("\n".join(fl) + "\n")
print("%d resize cases, %d fit cases" % (len(cases), len(fl)))
