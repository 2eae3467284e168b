"""Transformers as iterative maps, against torch itself (issue 27). Rows skip without torch.

FLOPs first (multiply-adds count 2), for d = 64, 4 heads, T = 128, L = 4, B = 32 and
torch's default feed-forward width f = 2048, per layer:

- projections: ``2 B T d (3d + d)`` = 67 MFLOP;
- scores and values: ``2 * 2 B T^2 d`` = 134 MFLOP, plus a softmax over ``B H T^2``
  = 2.1 M scores;
- feed-forward: ``2 * 2 B T d f`` = 2.1 GFLOP, 90 % of the layer.

So the forward pass is 9.2 GFLOP, bound by the feed-forward matmuls on both sides.
The tangent ``J v`` of the whole stack along one direction costs about twice the forward
pass (each matmul again on the tangent, the attention's product rule twice), as
``torch.func.jvp`` does in forward mode. Both sides run at default threads.
"""

from __future__ import annotations

import numpy as np

import itermap
from benchmarks._timing import compare


def _model(torch, d, heads, layers, dtype):
    nn = torch.nn
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d, heads, batch_first=True, dropout=0.0)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).to(dtype).eval()


def _forward_row(torch, quick, dtype_name):
    d, heads, T, L, B = 64, 4, (32 if quick else 128), 4, (8 if quick else 32)
    dtype = getattr(torch, dtype_name)
    model = _model(torch, d, heads, L, dtype)
    m = itermap.from_torch(model, seq_len=T)
    X = torch.randn(B, T, d, dtype=dtype)
    Xn = X.numpy()
    with torch.no_grad():
        ref = model(X).numpy()
    tol = 1e-10 if dtype_name == "float64" else 2e-4
    assert np.abs(m.forward(Xn) - ref).max() < tol

    def ours():
        m.forward(Xn)

    def torchs():
        with torch.no_grad():
            model(X)

    return compare(f"forward d={d} H={heads} T={T} L={L} B={B} {dtype_name} vs torch",
                   ours, torchs, target="ratio <= 1.5", repeat=3 if quick else 7)


def _tangent_row(torch, quick):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    d, heads, T, L, B = 64, 4, (32 if quick else 128), 4, (8 if quick else 32)
    model = _model(torch, d, heads, L, torch.float64)
    m = itermap.from_torch(model, seq_len=T)
    X = torch.randn(B, T, d, dtype=torch.float64)
    V = torch.randn(B, T, d, dtype=torch.float64)
    layers = [m.functions[(l + 1, l)] for l in range(L)]
    Xn, Vn = X.numpy().reshape(B, -1), V.numpy().reshape(B, -1)

    def ours():
        x, v = Xn, Vn[:, None, :]
        for g in layers:  # the tangent map along the layers, one direction per sequence
            v = g.tangent_rows(x, v)
            x = g(x)
        return v

    def torchs():
        # forward-mode AD has no fused CPU attention kernel: torch needs the math one
        with sdpa_kernel(SDPBackend.MATH):
            return torch.func.jvp(model, (X,), (V,))[1]

    np.testing.assert_allclose(ours()[:, 0, :], torchs().detach().numpy().reshape(B, -1),
                               atol=1e-9)
    return compare("tangent J v, same stack, float64 vs torch.func.jvp", ours, torchs,
                   target="ratio <= 1.5", repeat=3 if quick else 7)


def run(quick=False):
    try:
        import torch
    except ImportError:
        print("torch is not installed: the transformer rows are skipped", flush=True)
        return []
    return [_forward_row(torch, quick, "float32"), _forward_row(torch, quick, "float64"),
            _tangent_row(torch, quick)]
