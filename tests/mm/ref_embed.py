#!/usr/bin/python3
"""ref_embed.py - independent reference for `gemma4 mmembed` (gemma4uv / gemma4ua).

Written from shared/spec/gemma4-multimodal.md and the Hugging Face ordering,
not from the C code: it parses the mmproj GGUF itself, puts the GGUF weights
back into HF order (patch vectors (Y, X, C), position table (n_pos, 2, width))
and builds each patch the way HF's two-stage patchify does, all in float64.
Images are decoded and resized by Pillow (the resize the C port must match).

  ref_embed.py image MMPROJ IMAGE BUDGET OUT.f32   -> prints tokens / image / grid
  ref_embed.py audio MMPROJ WAV OUT.f32            -> prints tokens / samples
  ref_embed.py compare A.f32 B.f32 N_EMBD          -> error statistics of A against B
"""
import math
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- GGUF reader

GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8")
        self.p += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            at, n = self.take("<I"), self.take("<Q")
            return [self.value(at) for _ in range(n)]
        return self.take(SCALAR[t])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    r.p = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise SystemExit(f"{path}: GGUF version {version}")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        kv[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = kv.get("general.alignment", 32)
    base = (r.p + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        o = base + off
        if t == GGML_F32:
            v = np.frombuffer(data, "<f4", n, o).astype(np.float64)
        elif t == GGML_F16:
            v = np.frombuffer(data, "<f2", n, o).astype(np.float64)
        elif t == GGML_BF16:
            v = (np.frombuffer(data, "<u2", n, o).astype(np.uint32) << 16).view("<f4").astype(np.float64)
        elif t == GGML_Q8_0:
            blk = np.frombuffer(data, np.dtype([("d", "<f2"), ("q", "i1", 32)]), n // 32, o)
            v = (blk["d"].astype(np.float64)[:, None] * blk["q"].astype(np.float64)).reshape(-1)
        else:
            raise SystemExit(f"{name}: ggml type {t} not handled by the reference")
        # ggml ne is fastest-first: the numpy shape is the reverse
        tensors[name] = v.reshape(list(reversed(ne)))
    return kv, tensors


# ---------------------------------------------------------------- math (float64)

def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)


def hf_fit(W, H, M):
    """HF Gemma4Unified image processor's target size (spec §2.2)."""
    p, k = 16, 3
    u = p * k
    target = M * k * k * p * p
    f = math.sqrt(target / (H * W))
    h = math.floor(f * H / u) * u
    w = math.floor(f * W / u) * u
    if h == 0 and w == 0:
        raise SystemExit("image cannot be fitted")
    max_side = M * u
    if h == 0:
        h, w = u, min(math.floor(W / H) * u, max_side)
    elif w == 0:
        w, h = u, min(math.floor(H / W) * u, max_side)
    if h * w > target:
        raise SystemExit("fitted size exceeds the budget")
    return w, h


def embed_image(kv, T, path, budget):
    from PIL import Image
    img = Image.open(path)
    img.load()
    img = img.convert("RGB")
    W, H = img.size
    w, h = hf_fit(W, H, budget)
    if (w, h) != (W, H):
        img = img.resize((w, h), Image.BICUBIC)
    mean = np.array(kv.get("clip.vision.image_mean", [0.0, 0.0, 0.0]), np.float64)
    std = np.array(kv.get("clip.vision.image_std", [1.0, 1.0, 1.0]), np.float64)
    x = (np.asarray(img, np.float64) / 255.0 - mean) / std          # (h, w, 3)

    p = kv["clip.vision.patch_size"]
    k = kv.get("clip.vision.projector.scale_factor", 3)
    P = p * k
    gw, gh = w // P, h // P
    # HF stage 1: p x p patches, each (py, px, c), row-major over the p-grid
    small = x.reshape(h // p, p, w // p, p, 3).transpose(0, 2, 1, 3, 4).reshape(h // p, w // p, p * p * 3)
    # HF stage 2: merge k x k neighbours (row-major inside the group) into a
    # P x P x 3 block, i.e. a (Y, X, C) vector
    patches = np.empty((gh * gw, P * P * 3))
    for gy in range(gh):
        for gx in range(gw):
            blk = np.empty((P, P, 3))
            for dy in range(k):
                for dx in range(k):
                    sp = small[gy * k + dy, gx * k + dx].reshape(p, p, 3)
                    blk[dy * p:(dy + 1) * p, dx * p:(dx + 1) * p, :] = sp
            patches[gy * gw + gx] = blk.reshape(-1)

    # GGUF (C, Y, X) weights back to HF (Y, X, C) order (spec §2.6)
    def hf_vec(v):
        return v.reshape(3, P, P).transpose(1, 2, 0).reshape(-1)
    dense = T["v.patch_embd.weight"]                       # (width, 3*P*P)
    width = dense.shape[0]
    dense = dense.reshape(width, 3, P, P).transpose(0, 2, 3, 1).reshape(width, -1)
    g1, b1 = hf_vec(T["v.patch_norm.1.weight"]), hf_vec(T["v.patch_norm.1.bias"])
    pe = T["v.position_embd.weight"].transpose(1, 0, 2)   # (2, n_pos, width) -> HF (n_pos, 2, width)
    n_pos = pe.shape[0]
    cols = np.arange(gh * gw) % gw
    rows = np.arange(gh * gw) // gw
    if gw > n_pos or gh > n_pos:
        raise SystemExit(f"grid {gw}x{gh} exceeds the position table ({n_pos})")
    eps = kv.get("clip.vision.attention.layer_norm_epsilon", 1e-6)

    a = layer_norm(patches, g1, b1)
    hdn = a @ dense.T + T["v.patch_embd.bias"]
    hdn = layer_norm(hdn, T["v.patch_norm.2.weight"], T["v.patch_norm.2.bias"])
    hdn = hdn + pe[cols, 0, :] + pe[rows, 1, :]
    hdn = layer_norm(hdn, T["v.patch_norm.3.weight"], T["v.patch_norm.3.bias"])
    r = rms_norm(hdn, eps)
    e = r @ T["mm.input_projection.weight"].T
    return e, f"tokens {gh * gw}\nimage {w}x{h}\ngrid {gw}x{gh}\n"


def read_wav(path):
    """RIFF WAVE: PCM 8/16/24/32 and IEEE float 32/64; channels averaged."""
    d = open(path, "rb").read()
    if d[:4] != b"RIFF" or d[8:12] != b"WAVE":
        raise SystemExit(f"{path}: not a WAV file")
    p, fmt, data = 12, None, None
    while p + 8 <= len(d):
        cid, n = d[p:p + 4], struct.unpack_from("<I", d, p + 4)[0]
        body = d[p + 8:p + 8 + n]
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body, 0)
            if fmt[0] == 0xFFFE:
                fmt = (struct.unpack_from("<H", body, 24)[0],) + fmt[1:]
        elif cid == b"data":
            data = body
        p += 8 + n + (n & 1)
    tag, ch, rate, _, _, bits = fmt
    if rate != 16000:
        raise SystemExit(f"{path}: {rate} Hz; the reference takes 16 kHz only")
    if tag == 3:
        x = np.frombuffer(data, "<f4" if bits == 32 else "<f8").astype(np.float64)
    elif bits == 8:
        x = (np.frombuffer(data, np.uint8).astype(np.float64) - 128) / 128
    elif bits == 16:
        x = np.frombuffer(data, "<i2").astype(np.float64) / 32768
    elif bits == 24:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / (1 << 23)
    elif bits == 32:
        x = np.frombuffer(data, "<i4").astype(np.float64) / 2147483648
    x = x[:len(x) // ch * ch].reshape(-1, ch).mean(axis=1)
    return x


def embed_audio(T, path):
    x = read_wav(path)
    Wa = T["mm.a.input_projection.weight"]               # (n_embd, frame)
    F = Wa.shape[1]
    n = len(x)
    t = -(-n // F)
    fr = np.zeros(t * F)
    fr[:n] = x
    r = rms_norm(fr.reshape(t, F), 1e-6)                  # spec §3.3: eps hard-coded
    return r @ Wa.T, f"tokens {t}\nsamples {n}\n"


def compare(a_path, b_path, n_embd):
    a = np.fromfile(a_path, "<f4").astype(np.float64)
    b = np.fromfile(b_path, "<f4").astype(np.float64)
    if a.size != b.size or a.size % n_embd:
        print(f"size mismatch: {a.size} vs {b.size} floats (n_embd {n_embd})")
        return 1
    if not np.all(np.isfinite(a)):
        print("non-finite values in", a_path)
        return 1
    d = np.abs(a - b)
    scale = np.abs(b).max()
    if scale == 0:  # silence: every row is exactly zero; the absolute error is the measure
        print(f"rel {d.max():.3e} max_abs {d.max():.3e} max|ref| 0 rows {a.size // n_embd}")
        return 0
    rel_el = d / np.maximum(np.abs(b), 1e-3 * scale)
    print(f"rel {d.max() / scale:.3e} max_abs {d.max():.3e} max|ref| {scale:.3e} "
          f"mean_abs {d.mean():.3e} rms {math.sqrt((d * d).mean()):.3e} "
          f"p99_elem_rel {np.quantile(rel_el, 0.99):.3e} rows {a.size // n_embd}")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "compare" and len(argv) == 5:
        return compare(argv[2], argv[3], int(argv[4]))
    if len(argv) == 6 and argv[1] == "image":
        kv, T = read_gguf(argv[2])
        e, info = embed_image(kv, T, argv[3], int(argv[4]))
        out = argv[5]
    elif len(argv) == 5 and argv[1] == "audio":
        kv, T = read_gguf(argv[2])
        e, info = embed_audio(T, argv[3])
        out = argv[4]
    else:
        sys.stderr.write(__doc__)
        return 2
    e.astype("<f4").tofile(out)
    sys.stdout.write(info)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
