#!/usr/bin/python3
"""gen_media.py - deterministic test inputs for tests/mm/mmembed.sh.

  gen_media.py image OUT W H MODE [SEED]   MODE: rgb | gray | rgba | palette | flat | jpeg
  gen_media.py wav OUT N_SAMPLES CHANNELS KIND [SEED]
        KIND: pcm16 | float32 | silent (pcm16 zeros) | pcm24

Images mix smooth gradients, a few hard edges and noise, so that both the
resampler and the patch order matter; waveforms are tones plus noise at
changing loudness.
"""
import struct
import sys

import numpy as np
from PIL import Image


def image(out, w, h, mode, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(xx / max(w, 1) * 6.3 + seed)
    g = 255 * yy / max(h - 1, 1)
    b = 255 * ((xx // 37 + yy // 23) % 2)
    px = np.stack([r, g, b], axis=-1) + rng.normal(0, 25, (h, w, 3))
    px = np.clip(np.rint(px), 0, 255).astype(np.uint8)
    if mode == "flat":
        px[:] = np.array([200, 30, 90], np.uint8)
    im = Image.fromarray(px, "RGB")
    if mode == "gray":
        im = im.convert("L")
    elif mode == "rgba":
        a = rng.integers(0, 256, (h, w), dtype=np.uint8)
        im = Image.fromarray(np.dstack([px, a]), "RGBA")
    elif mode == "palette":
        im = im.quantize(64)
    if mode == "jpeg":
        im.save(out, "JPEG", quality=90)
    else:
        im.save(out, "PNG")


def wav(out, n, ch, kind, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    env = 0.05 + 0.9 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    chans = []
    for c in range(ch):
        x = env * (0.6 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.3 * rng.normal(0, 1, n))
        chans.append(np.clip(x, -1, 1))
    x = np.stack(chans, axis=1)
    if kind == "silent":
        x[:] = 0
    if kind == "float32":
        data, tag, bits = x.astype("<f4").tobytes(), 3, 32
    elif kind == "pcm24":
        v = np.clip(np.rint(x * 8388607), -8388608, 8388607).astype("<i4").reshape(-1)
        data = b"".join(int(s & 0xFFFFFF).to_bytes(3, "little") for s in v)
        tag, bits = 1, 24
    else:
        data, tag, bits = np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2").tobytes(), 1, 16
    ba = ch * bits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, 16000, 16000 * ba, ba, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    if len(data) & 1:
        body += b"\0"
    with open(out, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def main(a):
    if len(a) >= 6 and a[1] == "image":
        image(a[2], int(a[3]), int(a[4]), a[5], int(a[6]) if len(a) > 6 else 1)
    elif len(a) >= 6 and a[1] == "wav":
        wav(a[2], int(a[3]), int(a[4]), a[5], int(a[6]) if len(a) > 6 else 1)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
