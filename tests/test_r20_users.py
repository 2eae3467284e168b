"""Defects that new users' own scripts met in round 20 (other seeds, gains, sizes and
dtypes than the benchmarks'), each with the test that failed before its fix."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap.analysis import find_fixed_points, sample_states
from itermap.threads import blas_limited


@contextlib.contextmanager
def _deadline(seconds):
    """A TimeoutError after ``seconds`` of wall time (a hang fails instead of blocking)."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs signal.setitimer")

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _pairwise(P):
    """Euclidean distances by differences in float64 (no rounding of |x|^2)."""
    P = np.asarray(P, dtype=np.float64)
    D = np.sqrt(((P[:, None, :] - P[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    return D


def test_clustering_ends_where_a_rows_distance_to_itself_rounds_above_tol():
    # the fixed-point search clusters its running starts on their squared distances by
    # |a|^2 + |b|^2 - 2 a.b, whose diagonal rounds to ~eps |x|^2, not 0; below that
    # tolerance (float32 at its default unique_tol, float64 at unique_tol=1e-9 on 150
    # units) no row joined its own group and the search looped for ever
    from itermap.analysis.fixed_points._clustering import _cluster, _sq_dist

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(30, 150))
    x = np.concatenate([x, x[:5]])              # five exact repeats
    for dtype, tol in ((np.float32, 1.2e-4), (np.float64, 1e-9)):
        xd = x.astype(dtype)
        d2 = np.asarray(_sq_dist(np, xd, xd))
        with _deadline(30):
            lead, heads = _cluster(np, xd, tol, d2)
        # the groups by exact distances: the 30 distinct rows lead; a repeat joins its row
        # or (where the form's rounding exceeds tol^2) stays apart, never joins another
        assert lead[:30].tolist() == list(range(30))
        if dtype == np.float32:     # float32's squared distances now in float64
            assert lead[30:].tolist() == list(range(5))
        assert all(t in (i, 30 + i) for i, t in enumerate(lead[30:].tolist()))


def test_float32_fixed_points_are_distinct_and_the_search_ends():
    # random_rnn(150, gain 2.5) in float32 from 20 starts: the search ran for over 12
    # minutes (float64: 5 s) in the loop above
    n = 150
    m = itermap.random_rnn(n, gain=2.5, rng=5, dtype=np.float32)
    x0 = sample_states(m, 20, rng=1).astype(np.float32)
    # one BLAS thread: at 150 units threads only contend (2 min instead of 5 s on 2 cores)
    with _deadline(240), blas_limited(1):
        fp = find_fixed_points(m, x0, progress=False)
    P = np.asarray(fp.points, dtype=np.float64)
    assert len(P) > 1
    W = np.asarray(m.jacobian(np.zeros(n, np.float32)), dtype=np.float64)   # tanh'(0) = 1
    assert np.abs(np.asarray(m.step(np.zeros(n, np.float32)))).max() == 0   # no bias
    # each point a fixed point of tanh(W x) to float32's default tol, in float64
    assert np.linalg.norm(np.tanh(P @ W.T) - P, axis=1).max() <= 1.2e-5
    # points within unique_tol (1.2e-4 in float32) are one point: the squared distances
    # by the matmul form in float32 round by ~1e-5, and a pair 3.5e-6 apart was two points
    assert _pairwise(P).min() > 1.2e-4


_TINY_SPEC = """
title = "one spec, one file"
seed = 3

[networks.net]
kind = "random_rnn"
n = 12
gain = 1.3

[[analyses]]
kind = "lyapunov"
network = "net"
steps = 20
k = 3
"""


def test_one_spec_and_seed_give_one_results_file_in_any_process(tmp_path):
    # results.json lists the BLAS libraries in threadpoolctl's order, which follows string
    # hashing: NumPy's and SciPy's OpenBLAS swapped places between two runs of one spec
    # (PYTHONHASHSEED 0 and 2), against the README's "the same spec and seed give the
    # same file"
    spec = tmp_path / "tiny.toml"
    spec.write_text(_TINY_SPEC)
    root = str(Path(__file__).resolve().parents[1])
    texts = []
    for hash_seed in ("0", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
        out = tmp_path / f"report{hash_seed}"
        done = subprocess.run([sys.executable, "-m", "itermap.analysis.cli", "report", str(spec),
                               "--out", str(out)], env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
        texts.append((out / "results.json").read_text())
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.parametrize("kind, key, value, named", [
    ("lyapunov_scan", "gains", "[1.0, -1.0]", "analyses[0].gains[1]: must be >= 0"),
    ("lyapunov_scan", "gains", "{ start = -1.0, stop = 1.0, num = 3 }",
     "analyses[0].gains.start: must be >= 0"),
    ("lyapunov_scan", "gains", "[0.5, 2e6]", "analyses[0].gains: the mean-field reference"),
    ("orbit_diagram", "gains", "[-1.0, 1.0]", "analyses[0].gains[0]: must be >= 0"),
    ("edge_of_chaos", "radii", "[0.0, 1.0]", "analyses[0].radii: spectral radii must be > 0"),
])
def test_a_scans_out_of_range_gains_are_refused_before_it_runs(tmp_path, capsys, kind, key,
                                                               value, named):
    # a network's gain must be >= 0 (refused with exit 2), but a scan's gains were not
    # checked: the scan ran, failed in its section ("gain must be in [0, 1e6]", from the
    # mean-field curve; "radii must be > 0") and exited 1 naming no key
    from itermap.analysis.cli import main

    spec = tmp_path / "scan.toml"
    spec.write_text(f'title = "scan"\nseed = 5\n[networks.net]\nkind = "random_rnn"\nn = 8\n'
                    f'[[analyses]]\nkind = "{kind}"\nnetwork = "net"\n{key} = {value}\n')
    out = tmp_path / "report"
    assert main(["report", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"scan.toml:9: {named}" in err    # the line of the key
    assert not out.exists()


@pytest.mark.parametrize("method", ["newton", "newton-krylov"])
def test_a_period_search_returns_each_point_of_an_orbit(method):
    # "Each point of an orbit is returned" held only on maps of up to 3 units (their
    # search completes orbits); on random_rnn(60, gain 2) five of the 13 period-2 points
    # came without their partner F(x), each alone in its orbit label (Newton-Krylov: four)
    n = 60
    m = itermap.random_rnn(n, gain=2.0, rng=4)
    W = np.asarray(m.jacobian(np.zeros(n)))                  # tanh'(0) = 1, no bias
    # Newton-Krylov's starts that reach no point run to max_iter, 3-4 s each at 600 (the
    # test took 100 s); 40 iterations reach 10 period-2 points on a Zen 3 VM, in 11 s
    budget = {"max_iter": 40} if method == "newton-krylov" else {}
    fp = find_fixed_points(m, sample_states(m, 40, rng=0), period=2, progress=False,
                           method=method, **budget)
    P = np.asarray(fp.points)
    images = np.tanh(P @ W.T)                                # F(x) in plain NumPy
    assert np.linalg.norm(np.tanh(images @ W.T) - P, axis=1).max() <= 1e-10   # F^2(x) = x
    two = np.asarray(fp.min_period) == 2
    assert two.sum() >= 2
    nearest = np.sqrt(((images[:, None, :] - P[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert nearest.max() <= 1e-6                              # F(x) is among the points
    labels, counts = np.unique(np.asarray(fp.orbit)[two], return_counts=True)
    assert (counts == 2).all()


def test_a_map_written_for_one_state_at_a_time_is_named():
    # ChaosTools-style: step and jacobian of one state (x[0], x[1]); the Lyapunov
    # functions step one state, but the fixed-point search steps batches, where this
    # map's own code raised a bare IndexError
    class OneState:
        dim = 2

        def step(self, x):
            return np.array([1.0 - 1.4 * x[0] ** 2 + x[1], 0.3 * x[0]])

        def jacobian(self, x):
            return np.array([[-2.8 * x[0], 1.0], [0.3, 0.0]])

    with pytest.raises(ValueError, match=r"map: its step failed on a batch.*IndexError"):
        find_fixed_points(OneState(), np.zeros((3, 2)), progress=False)
