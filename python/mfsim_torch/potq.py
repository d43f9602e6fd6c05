"""PoT4 operands for captured GEMMs: the training core's deterministic ALS-POTQ rule
(models/pot4.h), and the payload file of the trace format (docs/trace-format.md).

Per operand tensor: the scale exponent E is the one at which the largest magnitude rounds to
exactly 2^E (threshold t = sqrt 2, the geometric midpoint); each element rounds to the nearest
power of two by the same threshold on its mantissa, levels above 2^E clip, below 2^(E-6) vanish.
Differences from the training core (docs/pytorch.md): no weight bias correction (WBC), no
clipping search (PRC), and errors round deterministically instead of stochastically.
"""

import math
import struct
import zlib

import torch

THRESHOLD = 1.41421356237309515  # models/quantizer.h: sqrt(2)
MAGIC = b"MFSIMBIN"


def scale_exp(max_abs, t=THRESHOLD):
    """pot4_scale_exp_deterministic: floor(log2 max) + (1 if max / 2^floor >= t)."""
    if not max_abs > 0.0:
        return 0
    f, e = math.frexp(max_abs)
    return e if f >= t / 2 else e - 1


def quantize(x, t=THRESHOLD):
    """(codes uint8 tensor, integer values int64 tensor, E) of a float tensor, elementwise as
    models/pot4.cpp pot4_quantize."""
    x = x.detach().to(torch.float64)
    finite = torch.isfinite(x)
    max_abs = float(x[finite].abs().max()) if bool(finite.any()) else 0.0
    e_scale = max(-120, min(127, scale_exp(max_abs, t)))
    f, e = torch.frexp(x.abs())
    level = torch.where(f >= t / 2, e, e - 1).to(torch.int64)
    mag = (level - e_scale + 7).clamp(max=7)
    mag = torch.where(torch.isinf(x), torch.full_like(mag, 7), mag)
    mag = torch.where((x == 0) | torch.isnan(x) | (mag < 1), torch.zeros_like(mag), mag)
    neg = torch.signbit(x) & (mag > 0)
    codes = (mag | (neg.to(torch.int64) << 3)).to(torch.uint8)
    values = torch.where(mag > 0, torch.ones_like(mag) << (mag - 1).clamp(min=0), torch.zeros_like(mag))
    values = torch.where(neg, -values, values)
    return codes, values, e_scale


def pack(codes):
    """Two codes per byte, element i in byte i/2, low nibble for even i."""
    c = codes.reshape(-1).tolist()
    if len(c) % 2:
        c.append(0)
    return bytes(c[i] | (c[i + 1] << 4) for i in range(0, len(c), 2))


class PayloadFile:
    """Collects payloads in memory, aligned to 8 bytes after the 16-byte header."""

    def __init__(self, limit_bytes):
        self.data = bytearray(MAGIC + struct.pack("<II", 1, 0))
        self.limit = limit_bytes
        self.skipped = 0

    def _append(self, blob):
        while len(self.data) % 8:
            self.data.append(0)
        offset = len(self.data)
        self.data += blob
        return {"offset": offset, "bytes": len(blob), "crc32": "%08x" % (zlib.crc32(blob) & 0xFFFFFFFF)}

    def add_gemm(self, a, b):
        """A (M x K) and B (K x N) float tensors: returns the record's operand specs, accumulator
        and payload refs, or None once the payload limit is reached."""
        m, k = a.shape
        n = b.shape[1]
        ca, va, ea = quantize(a)
        cb, vb, eb = quantize(b)
        acc = (va.to(torch.float64) @ vb.to(torch.float64)).to(torch.int64)  # exact: |sums| < 2^53
        bits = 32 if k * 4096 < 2**31 else 64
        pa, pb = pack(ca), pack(cb)
        expected = acc.reshape(-1).numpy().astype("<i4" if bits == 32 else "<i8").tobytes()
        if len(self.data) + len(pa) + len(pb) + len(expected) + 24 > self.limit:
            self.skipped += 1
            return None
        refs = {"a": self._append(pa), "b": self._append(pb), "expected": self._append(expected)}
        refs["expected"]["type"] = "i32" if bits == 32 else "i64"
        return {"a": {"format": "pot4", "scale_exp": ea}, "b": {"format": "pot4", "scale_exp": eb},
                "accumulator": {"bits": bits, "overflow": "error"}, "payload": refs}
