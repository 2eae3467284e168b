"""Training epochs of itermap.train against torch on the CPU (issue 14, section 8).

Cases, each one epoch, same network, batch, optimizer (Adam) and dtype (float64),
interleaved in one process:
- the digits MLP [64, 64, 10] as a map (2 steps, 1438 images, batch 64), against torch
  iterating the same block map (the paper's IteratedModel loop); a torch nn.Sequential
  MLP is timed too, for the record;
- a dense map N=1000 (sizes [10, 980, 10], every non-input block dense, tanh), 10 steps
  of a held input, 640 samples, batch 64, against torch iterating the same matrix;
- a sparse map at density 0.05, N=2000 (sizes [20, 1960, 20]), the same loop, against
  torch training the dense masked equivalent (the paper code's MaskedLinear: the
  weight times a fixed 0/1 mask in every forward pass).
The torch rows are skipped without torch. torch runs on as many threads as NumPy's
BLAS (one for the digits, where train holds BLAS to one thread).
"""

from __future__ import annotations

import numpy as np

import itermap
from benchmarks._timing import interleaved, report
from itermap import BlockMatrix, IterativeMap, datasets
from itermap.analysis import digits_model


def _torch_map_epoch(torch, m, X, Y, steps, batch, *, masked):
    """One epoch of torch iterating the block map ``m``: z = x W^T + b, blocks activated,
    the input block overwritten by the input each step; cross-entropy at the last step."""
    W0 = np.asarray(m.block_matrix.to_dense())
    ib = m.block_slice(m.input_block)
    mask = torch.tensor((W0 != 0).astype(np.float64))
    W = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(np.asarray(m.bias), requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=1e-3)
    sl = [m.block_slice(i) for i in range(len(m.sizes))]
    acts = [a.name for a in m.activations]
    fn = {"identity": lambda z: z, "tanh": torch.tanh, "relu": torch.relu}
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    n = X.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))

    def epoch():
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            u = Xt[idx]
            x = torch.zeros(len(idx), W.shape[0], dtype=torch.float64)
            Wm = W * mask if masked else W
            for _ in range(steps):
                x = torch.cat([u, x[:, ib.stop:]], dim=1)
                z = x @ Wm.T + b
                x = torch.cat([u] + [fn[acts[i]](z[:, sl[i]]) for i in range(1, len(sl))],
                              dim=1)
            loss = torch.nn.functional.cross_entropy(x[:, sl[-1]], Yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epoch


def _torch_mlp_epoch(torch, X, Y, batch):
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10)).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    n = X.shape[0]

    def epoch():
        for s in range(0, n, batch):
            loss = torch.nn.functional.cross_entropy(net(Xt[s:s + batch]), Yt[s:s + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epoch


def _ours(m, X, Y, steps, batch):
    def epoch():
        itermap.train(m, X, Y, steps=steps, epochs=1, batch_size=batch, lr=1e-3, rng=0,
                      progress=False)
    return epoch


def _big_map(n, n_io, density, rng):
    sizes = [n_io, n - 2 * n_io, n_io]
    tok = "W" if density >= 1 else f"R={density}"
    pattern = [["0", "0", "0"], [tok] * 3, [tok] * 3]
    bm = BlockMatrix.from_pattern(sizes, pattern, rng=rng, scale=0.9)
    return IterativeMap(bm, np.zeros(n), ["identity", "tanh", "identity"], input_block=0)


def run(quick=False):
    try:
        import torch
    except ImportError:
        print("torch is not installed: the torch rows are skipped")
        return []
    from threadpoolctl import threadpool_info

    threads = max([i.get("num_threads", 1) for i in threadpool_info()
                   if i.get("user_api") == "blas"] or [1])
    torch.set_num_threads(threads)
    repeat = 3 if quick else 5
    rows = []
    x_train, y_train, _, _ = datasets.digits()
    # train holds BLAS to one thread for steps this small; torch gets the same (with two
    # threads on the loaded 2-core machine torch's spinning workers took 40-100x longer)
    torch.set_num_threads(1)
    mlp = digits_model("mlp", hidden=64, rng=0)
    t = interleaved({"ours": _ours(mlp, x_train, y_train, 2, 64),
                      "torch map": _torch_map_epoch(torch, mlp, x_train, y_train, 2, 64,
                                                    masked=False),
                      "torch mlp": _torch_mlp_epoch(torch, x_train, y_train, 64)}, repeat)
    rows.append(report("digits MLP [64,64,10] as a map, 1 epoch, vs torch on the same map",
                     t["ours"], t["torch map"], "ratio <= 1.5", t["ours"] <= 1.5 * t["torch map"]))
    rows.append(report("same, vs torch nn.Sequential MLP (record)", t["ours"], t["torch mlp"],
                     "record", True))

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n_samples = 320 if quick else 640
    for n, n_io, density, target in ((1000, 10, 1.0, 1.5), (2000, 20, 0.05, 1.0)):
        m = _big_map(n, n_io, density, rng)
        X = rng.random((n_samples, n_io))
        Y = rng.integers(0, n_io, n_samples)
        t = interleaved({"ours": _ours(m, X, Y, 10, 64),
                          "torch": _torch_map_epoch(torch, m, X, Y, 10, 64,
                                                    masked=density < 1)}, repeat)
        what = "dense" if density >= 1 else f"sparse d={density}"
        base = "torch on the same matrix" if density >= 1 else "torch dense masked"
        rows.append(report(f"{what} N={n}, 10 steps, {n_samples} samples, 1 epoch, vs {base}",
                         t["ours"], t["torch"], f"ratio <= {target}",
                         t["ours"] <= target * t["torch"]))
    return rows
