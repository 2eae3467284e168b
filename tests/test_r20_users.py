"""Defects that new users' own scripts met in round 20 (other seeds, gains, sizes and
dtypes than the benchmarks'), each with the test that failed before its fix."""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pytest


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
        assert all(t in (i, 30 + i) for i, t in enumerate(lead[30:].tolist()))
