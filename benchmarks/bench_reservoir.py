"""Reservoirs (issue 32): a reservoirpy reservoir as an itermap map, against reservoirpy.

Rows skip without reservoirpy (``pip install "itermap[reservoir]"``).

- Run: a 1,000-unit sparse leaky reservoir (reservoirpy's defaults: 10 % recurrent
  connectivity, 100,000 nonzeros; ``lr = 0.3``, ``sr = 0.9``), one input, 10,000 steps,
  every state kept. reservoirpy's ``Reservoir.run`` against ``itermap.iterate`` on
  ``from_reservoirpy(node)``; the states are checked equal first. Per step both do one
  sparse product with W (2e5 flops) and a few vector operations: the time is the
  sparse product plus the per-step Python of each.
- Spectrum: the top-10 conditional Lyapunov exponents of that reservoir driven by the
  same input, 2,000 steps after 200 of transient. Ours: ``lyapunov_spectrum(m, k=10)``.
  Baseline: what a reservoirpy user writes (one of the pull requests to reservoirpy's
  issue #109): reservoirpy's states, then a loop ``Q <- (1 - a) Q + a (1 - x_t^2) * (W Q)``
  with a reduced QR every step, summing ``log|diag R|``.

Both sides run with BLAS at one thread (the machine is shared).
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import itermap
from benchmarks._timing import compare


def run(quick=False):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from reservoirpy.nodes import Reservoir
    except ImportError:
        print("reservoirpy is not installed: the reservoir rows are skipped", flush=True)
        return []
    with threadpool_limits(1):
        res = Reservoir(1000, lr=0.3, sr=0.9, seed=0)
        steps = 2000 if quick else 10_000
        u = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, 1))
        res.initialize(u[:1])
        m = itermap.from_reservoirpy(res)
        return [_run_row(res, m, u, quick), _spectrum_row(res, m, u, quick)]


def _run_row(res, m, u, quick):
    steps = u.shape[0]

    def theirs():
        res.reset()
        return res.run(u)

    def ours():
        return itermap.iterate(m, m.zeros(), steps, inputs=u).states

    err = float(np.max(np.abs(ours()[1:, 1:] - theirs())))
    assert err <= 1e-12, err
    return compare(f"reservoir N=1000 nnz={m.block_matrix.nnz} T={steps}: iterate vs "
                   "reservoirpy Reservoir.run", ours, theirs, target="ratio <= 1.2",
                   repeat=3 if quick else 5, setup_note=f"states equal to {err:.1e}")


def _spectrum_row(res, m, u, quick):
    from itermap.analysis import lyapunov_spectrum

    steps, transient, k = (500, 100, 10) if quick else (2000, 200, 10)
    T = steps + transient
    uu = u[:T]
    W = res.W.tocsr()
    lr = float(res.lr)

    def theirs():
        res.reset()
        states = res.run(uu)
        Q = np.linalg.qr(np.random.default_rng(1).normal(size=(W.shape[0], k)))[0]
        total = np.zeros(k)
        for t in range(1, T):  # the tangent of step t+1 at the state of step t
            d = 1.0 - np.tanh(W @ states[t - 1] + res.Win @ uu[t] + res.bias) ** 2
            Q, R = np.linalg.qr((1 - lr) * Q + lr * d[:, None] * (W @ Q))
            if t >= transient:
                total += np.log(np.abs(np.diag(R)))
        return np.sort(total / (T - transient))[::-1]

    def ours():
        x0 = m.zeros()
        r = lyapunov_spectrum(m, x0, steps, k=k, transient=transient, inputs=uu, rng=1)
        return np.ravel(r.exponents)

    a, b = ours(), theirs()
    note = f"top exponents ours {np.round(a[:3], 4).tolist()}, loop {np.round(b[:3], 4).tolist()}"
    print(note, flush=True)
    assert np.max(np.abs(a - b)) < 0.01, (a, b)
    return compare(f"top-10 spectrum N=1000 T={steps}: lyapunov_spectrum vs reservoirpy + "
                   "QR loop", ours, theirs, target="ratio <= 1.2", repeat=3,
                   warmup=0, setup_note=note)
