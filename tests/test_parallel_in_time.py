"""Newton iterations against the largest Lyapunov exponent (Gonzalez et al.)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import itermap
from itermap.analysis import newton_lyapunov_scan, plots


@pytest.fixture(scope="module")
def scan():
    return newton_lyapunov_scan([0.3, 0.6, 3.0], n=16, steps=64, trials=2,
                                lyapunov_steps=500, transient=100, rng=1)


def test_contracting_networks_converge_fast_and_chaotic_ones_do_not(scan):
    lyap, iters = scan.lyapunov, scan.iterations
    assert np.all(lyap[:2] < 0) and np.all(lyap[2] > 0.05)
    assert np.all(scan.converged[:2]) and np.all(iters[:2] <= 8)
    # a positive exponent: Newton needs about T iterations, or does not converge in T
    assert np.all(iters[2] >= 0.5 * scan.steps)
    assert np.all(iters <= scan.steps)


def test_the_exponent_at_small_gain_is_that_of_the_zero_fixed_point():
    # at g = 0.3 every start falls to x = 0, where the Jacobian is W: lambda_1 = log rho(W)
    scan = newton_lyapunov_scan([0.3], n=12, steps=32, trials=1, lyapunov_steps=400,
                                transient=200, rng=np.random.default_rng(5))
    W = itermap.random_rnn(12, gain=0.3, rng=np.random.default_rng(5)).block_matrix.to_dense()
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    assert abs(scan.lyapunov[0, 0] - np.log(rho)) < 0.02


def test_the_scan_is_seeded_and_saveable(scan, tmp_path):
    again = newton_lyapunov_scan([0.3, 0.6, 3.0], n=16, steps=64, trials=2,
                                 lyapunov_steps=500, transient=100, rng=1)
    np.testing.assert_array_equal(again.iterations, scan.iterations)
    np.testing.assert_array_equal(again.lyapunov, scan.lyapunov)
    back = itermap.load(itermap.save(scan, os.path.join(tmp_path, "scan.npz")))
    np.testing.assert_array_equal(back.iterations, scan.iterations)
    assert back.steps == 64 and back.jacobian == "full"


def test_the_plot(scan):
    ax = plots.newton_lyapunov(scan)
    assert ax.get_yscale() == "log"
    xs = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections])
    np.testing.assert_allclose(np.sort(xs), np.sort(scan.lyapunov.ravel()))
    with pytest.raises(ValueError, match="share the shape"):
        plots.newton_lyapunov({"gains": np.ones(2), "lyapunov": np.ones((2, 1)),
                               "iterations": np.ones((3, 1)), "converged": np.ones((2, 1)),
                               "steps": 4})


@pytest.mark.parametrize("kwargs, err", [
    ({"gains": [-1.0]}, ValueError), ({"gains": []}, ValueError),
    ({"n": 0}, ValueError), ({"steps": 1.5}, TypeError), ({"jacobian": "block"}, ValueError),
])
def test_bad_arguments(kwargs, err):
    with pytest.raises(err):
        newton_lyapunov_scan(**kwargs)
