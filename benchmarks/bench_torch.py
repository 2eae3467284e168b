"""PyTorch models in itermap, against torch itself (issue 13). Rows skip without torch.

FLOPs first (multiply-adds count 2):

- GRU, input 16, hidden 128, B = 64, 1000 steps: per step ``2 B (I + H) 3H``
  = 7.1 MFLOP in the two gate products (one matmul each for the three gates)
  plus about ``12 B H`` elementwise operations; 7.1 GFLOP in all. torch computes
  the input products of the whole sequence in one matmul; we do one per step.
- MLP 784-1024-1024-512-10, B = 256: ``2 B sum(in * out)`` = 1.23 GFLOP; the
  topological sweep of the imported map does exactly the forward pass's matmuls.
- Import of a 2000-2000-2000-1000-10 MLP (10.0 M parameters): no arithmetic;
  the cost is reading the arrays (views of torch's memory) and one pass of
  finiteness checks.

Both sides run on one thread (torch.set_num_threads(1), BLAS via threadpoolctl):
the machine is shared, and oversubscribed threads made torch's own GRU 100x
slower than one thread in our trials.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

import itermap
from benchmarks._timing import compare


def run(quick=False):
    try:
        import torch
    except ImportError:
        print("torch is not installed: the torch rows are skipped", flush=True)
        return []
    torch.set_num_threads(1)
    with threadpool_limits(1):
        return [_import_row(torch, quick), _gru_row(torch, quick, "float32"),
                _gru_row(torch, quick, "float64"), _mlp_row(torch, quick)]


def _import_row(torch, quick):
    nn = torch.nn
    sizes = [1000, 1000, 1000, 500, 10] if quick else [2000, 2000, 2000, 1000, 10]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    n_params = sum(p.numel() for p in model.parameters())
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        m = itermap.from_torch(model)
        times.append(time.perf_counter() - t0)
    assert m.dim == sum(sizes)
    t = float(np.median(times))
    name = f"from_torch MLP {n_params / 1e6:.1f}M parameters (budget 1 s)"
    print(f"{name:<58} ours {t * 1e3:9.2f} ms  [time <= 1 s: {'met' if t <= 1 else 'MISSED'}]",
          flush=True)
    return {"name": name, "ours_s": t, "baseline_s": 1.0, "ratio": t, "speedup": 1 / t,
            "target": "time <= 1 s", "met": t <= 1.0, "note": "baseline is the 1 s budget"}


def _gru_row(torch, quick, dtype):
    n_in, H, B = 16, 128, 64
    T = 200 if quick else 1000
    torch.manual_seed(0)
    gru = torch.nn.GRU(n_in, H, dtype=getattr(torch, dtype))  # float32 is torch's default
    m = itermap.from_torch(gru)
    x = torch.randn(T, B, n_in, dtype=getattr(torch, dtype))
    xn = x.numpy()
    x0 = m.zeros(B).astype(dtype)

    def ours():
        return itermap.iterate(m, x0, T, inputs=xn, keep="last").final

    def theirs():
        with torch.no_grad():
            return gru(x)[1]

    assert np.allclose(ours(), theirs()[0].numpy(), atol=1e-4 if dtype == "float32" else 1e-12)
    return compare(f"iterate imported GRU H={H} B={B} {T} steps {dtype} vs nn.GRU", ours,
                   theirs, target="ratio <= 1.5", repeat=3 if quick else 5)


def _mlp_row(torch, quick):
    nn = torch.nn
    sizes = [784, 1024, 1024, 512, 10]
    B = 256
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 512), nn.Tanh(), nn.Linear(512, 10)).eval()
    m = itermap.from_torch(model)
    x = torch.randn(B, sizes[0])
    xn = x.numpy()
    x0 = m.zeros(B).astype(np.float32)

    def ours():
        return m.readout(itermap.iterate(m, x0, m.settle_steps, inputs=xn, keep="last").final)

    def theirs():
        with torch.no_grad():
            return model(x)

    assert np.allclose(ours(), theirs().numpy(), atol=1e-4)
    return compare("imported 4-layer MLP, settled (topological sweep) B=256 float32 "
                   "vs torch forward", ours, theirs, target="ratio <= 1.3",
                   repeat=5 if quick else 11)
