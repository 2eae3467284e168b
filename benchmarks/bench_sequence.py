"""Sequence models (issue 28): the attention scan and the state-space convolution.

Cases:
- ``attention_scan`` (the running max, then a diagonal affine scan: O(T d) work in
  O(log T) rounds) against the direct softmax over every prefix, O(T^2 d): the
  causal weights ``exp(s_j - m_k)`` (``j <= k``) of a block of 128 prefixes at a time,
  times ``V`` by BLAS, divided by their sums -- the way a causal attention kernel
  computes it for one query. T = 10^2 .. 10^5, d = 64. The direct one at T = 10^5
  (6.4e11 flops, minutes on this machine) is extrapolated from T = 3 10^4 by its
  T^2 work, and said so in the row;
- ``LinearStateSpace.convolve`` (the kernel by Krylov doubling, then an FFT) against
  the recurrence (``step`` per time step, the output read each step), HiPPO-LegS
  N = 64, H = 64 channels as a batch, L = 3 .. 10^4: the crossover;
- on a GPU (CuPy), skipped without one: both at their largest size, float32.

BLAS is held to one thread for both sides (threadpoolctl), as in bench_newton: the
machine is shared, and the ratio is what holds.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._timing import interleaved, report, time_call
from itermap import LinearStateSpace, attention_scan
from itermap.systems import hippo

D_V = 64
BLOCK = 128


def compare(name, ours, baseline, *, target, repeat):
    """Interleaved medians, recorded (the crossover is the result, not a pass/fail)."""
    ours()
    baseline()
    t = interleaved({"ours": ours, "baseline": baseline}, repeat)
    return report(name, t["ours"], t["baseline"], target, True)


def direct_prefix_softmax(s, V):
    """o_k = softmax(s[:k+1]) @ V[:k+1] for every k: O(T^2 d), blocks of prefixes."""
    T = s.shape[0]
    m = np.maximum.accumulate(s)
    out = np.empty_like(V)
    for r0 in range(0, T, BLOCK):
        r1 = min(T, r0 + BLOCK)
        k = np.arange(r0, r1)[:, None]
        E = np.exp(np.minimum(s[None, :r1] - m[r0:r1, None], 0.0))
        E[np.arange(r1)[None, :] > k] = 0.0
        out[r0:r1] = (E @ V[:r1]) / E.sum(axis=1, keepdims=True)
    return out


def _attention(T, repeat, extrapolate_from=None):
    rng = np.random.default_rng(0)
    s, V = 3.0 * rng.normal(size=T), rng.normal(size=(T, D_V))
    if extrapolate_from is None:
        got = {}

        def ours():
            got["scan"] = attention_scan(s, V)

        def base():
            got["direct"] = direct_prefix_softmax(s, V)

        row = compare(f"attention_scan T={T} d={D_V} vs direct softmax of every prefix",
                      ours, base, target="record", repeat=repeat)
        err = float(np.max(np.abs(got["scan"] - got["direct"])))
        assert err < 1e-10, err
        row["note"] = f"max |diff| {err:.1e}"
        return row
    T0, base0 = extrapolate_from
    ours_s = time_call(lambda: attention_scan(s, V), repeat=repeat)
    base_s = base0 * (T / T0) ** 2
    row = report(f"attention_scan T={T} d={D_V} vs direct (extrapolated)", ours_s, base_s,
                 "record", True)
    row["note"] = (f"direct not run (about {base_s:.0f} s here): extrapolated from T={T0} by "
                   f"its T^2 work")
    return row


def _ssm(L, H=64, N=64, repeat=3):
    A, B = hippo("legs", N)
    m = LinearStateSpace(A, B, np.ones(N) / N, dt=1.0 / L)
    u = np.random.default_rng(1).normal(size=(L, H, 1))
    got = {}

    def ours():
        got["conv"] = m.convolve(u)

    def base():
        x = m.zeros(H)
        y = np.empty((L, H, 1))
        for k in range(L):
            x = m.step(x, u[k])
            y[k] = m.readout(x)
        got["rec"] = y

    row = compare(f"convolve L={L} N={N} H={H} vs the recurrence", ours, base,
                  target="record", repeat=repeat)
    err = float(np.max(np.abs(got["conv"] - got["rec"]))) / float(np.max(np.abs(got["rec"])))
    assert err < 1e-8, err
    row["note"] = f"max relative |diff| {err:.1e}"
    return row


def _gpu(quick):
    from itermap.backends import cupy_available

    if not cupy_available():
        print("GPU cases skipped: cupy with a CUDA GPU is not available", flush=True)
        return []
    import cupy as cp

    rows = []
    T = 10_000 if quick else 100_000
    rng = np.random.default_rng(0)
    s = cp.asarray(3.0 * rng.normal(size=T), dtype=cp.float32)
    V = cp.asarray(rng.normal(size=(T, D_V)), dtype=cp.float32)

    def scan_gpu():
        attention_scan(s, V)
        cp.cuda.Device().synchronize()

    s_np, V_np = cp.asnumpy(s), cp.asnumpy(V)
    rows.append(compare(f"GPU attention_scan T={T} float32 vs the CPU scan",
                        scan_gpu, lambda: attention_scan(s_np, V_np), target="record",
                        repeat=3))
    L = 10_000
    A, B = hippo("legs", 64)
    m = LinearStateSpace(cp.asarray(A, dtype=cp.float32), cp.asarray(B, dtype=cp.float32),
                         cp.ones(64, dtype=cp.float32) / 64, dt=1.0 / L)
    u = cp.asarray(rng.normal(size=(L, 64, 1)), dtype=cp.float32)

    def conv_gpu():
        m.convolve(u)
        cp.cuda.Device().synchronize()

    def rec_gpu():
        x = m.zeros(64)
        for k in range(L):
            x = m.step(x, u[k])
        cp.cuda.Device().synchronize()

    rows.append(compare(f"GPU convolve L={L} N=64 H=64 float32 vs the recurrence",
                        conv_gpu, rec_gpu, target="record", repeat=3))
    return rows


def run(quick: bool = False) -> list[dict]:
    rows = []
    with threadpool_limits(1):
        lengths = (100, 1_000, 3_000) if quick else (100, 300, 1_000, 3_000, 10_000, 30_000)
        for T in lengths:
            rows.append(_attention(T, repeat=3 if T <= 10_000 else 1))
        last = rows[-1]
        rows.append(_attention(100_000 if not quick else 10_000, repeat=3,
                               extrapolate_from=(lengths[-1], last["baseline_s"])))
        for L in ((3, 10, 100, 1_000) if quick else (3, 10, 30, 100, 300, 1_000, 3_000, 10_000)):
            rows.append(_ssm(L, repeat=3 if L <= 1_000 else 1))
    rows += _gpu(quick)
    if not math.isfinite(sum(r["ratio"] for r in rows)):
        raise RuntimeError("a timing came out non-finite")
    return rows
