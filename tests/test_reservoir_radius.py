"""effective_spectral_radius against numpy eigenvalues, ARPACK and the Jacobian at 0."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap
from itermap.analysis import effective_spectral_radius


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), a=st.floats(0.01, 1.0), gain=st.floats(0.1, 3.0),
       seed=st.integers(0, 2 ** 16))
def test_matches_numpy_eigenvalues_and_the_jacobian_at_the_origin(n, a, gain, seed):
    W = np.random.default_rng(seed).normal(0, gain / np.sqrt(n), (n, n))
    want = np.max(np.abs(np.linalg.eigvals((1 - a) * np.eye(n) + a * W)))
    m = IterativeMap(W, activation="tanh", leak=a)
    assert effective_spectral_radius(m) == pytest.approx(want, rel=1e-10, abs=1e-13)
    assert effective_spectral_radius(W, leak=a) == pytest.approx(want, rel=1e-10, abs=1e-13)
    # tanh'(0) = 1: the map's own Jacobian at the origin has this spectral radius
    J = m.jacobian(np.zeros(n))
    assert np.max(np.abs(np.linalg.eigvals(J))) == pytest.approx(want, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("seed,a", [(0, 0.2), (1, 0.6), (2, 1.0)])
def test_arnoldi_on_a_large_sparse_reservoir_agrees_with_the_dense_solve(seed, a):
    m = itermap.random_rnn(600, gain=1.1, density=0.02, rng=seed, leak=a)
    dense = effective_spectral_radius(m, method="dense")
    assert effective_spectral_radius(m) == pytest.approx(dense, rel=1e-8)
    W = m.block_matrix.to_sparse().toarray()
    assert dense == pytest.approx(np.max(np.abs(np.linalg.eigvals((1 - a) * np.eye(600)
                                                                  + a * W))), rel=1e-12)


def test_a_driven_map_drops_its_input_block_and_per_block_leaks_count():
    rng = np.random.default_rng(4)
    Whh, Whx = rng.normal(size=(6, 6)) / 2, rng.normal(size=(6, 3)) * 10
    m = IterativeMap.from_rnn(Whh, Whx, leak=0.3)
    want = np.max(np.abs(np.linalg.eigvals(0.7 * np.eye(6) + 0.3 * Whh)))
    assert effective_spectral_radius(m) == pytest.approx(want, rel=1e-12)
    W = rng.normal(size=(5, 5))
    two = IterativeMap(BlockMatrix([2, 3], {(0, 0): W[:2, :2], (0, 1): W[:2, 2:],
                                            (1, 0): W[2:, :2], (1, 1): W[2:, 2:]}),
                       leak=[0.4, 0.9])
    a = np.array([0.4, 0.4, 0.9, 0.9, 0.9])
    M = np.diag(1 - a) + a[:, None] * W
    assert effective_spectral_radius(two) == pytest.approx(np.max(np.abs(np.linalg.eigvals(M))),
                                                           rel=1e-12)
    S = sp.csr_matrix(W)
    assert effective_spectral_radius(S, leak=0.5) == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(0.5 * np.eye(5) + 0.5 * W))), rel=1e-12)


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="leak"):
        effective_spectral_radius(IterativeMap(np.eye(2), leak=0.5), leak=0.5)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="leak"):
            effective_spectral_radius(np.eye(2), leak=bad)
    with pytest.raises(ValueError, match="map"):
        effective_spectral_radius(np.ones((2, 3)))
    with pytest.raises(TypeError, match="map"):
        effective_spectral_radius(itermap.systems.henon())
    with pytest.raises(TypeError, match="map"):
        effective_spectral_radius(np.eye(2) * 1j)
    with pytest.raises(ValueError, match="method"):
        effective_spectral_radius(np.eye(2), method="qr")


# -- the edge-of-chaos scan ---------------------------------------------------------------
def test_scan_exponent_is_lyapunov_spectrum_of_the_leaky_map():
    """The batched Benettin loop against lyapunov_spectrum on IterativeMap(rho W, leak=a).

    Ordered (and driven ordered) pairs forget rounding: both runs follow one trajectory and
    agree closely; a chaotic pair's trajectories part after ~40 steps, so there the two are
    independent finite-time estimates of one exponent."""
    from itermap.analysis import lyapunov_spectrum
    from itermap.analysis._reservoir import _largest_exponents, _unit_radius_reservoir

    gen = np.random.default_rng(0)
    W, _ = _unit_radius_reservoir(60, 0.3, gen)
    w_in = gen.uniform(-1, 1, 60)
    x0 = gen.normal(0, 0.5, 60)
    pairs = [(0.7, 0.3), (0.95, 1.0), (3.0, 1.0)]
    for scale in (0.0, 0.5):
        u = gen.uniform(-1, 1, 2500) * scale
        rho = np.array([[p[0]] for p in pairs])
        a = np.array([[p[1]] for p in pairs])
        ours = _largest_exponents(W, w_in, u, x0, rho, a, 500)
        for (r, lk), got in zip(pairs, ours):
            if scale == 0:
                m = IterativeMap(r * W, leak=lk)
                ref = lyapunov_spectrum(m, x0, 2000, k=1, transient=500, rng=0)
            else:
                m = IterativeMap.from_rnn(r * W, scale * w_in[:, None], leak=lk)
                ref = lyapunov_spectrum(m, m.with_input(np.r_[0.0, x0], np.zeros(1)), 2000,
                                        k=1, transient=500, rng=0,
                                        inputs=(u / scale)[:, None])
            want = float(np.ravel(ref.exponents)[0])
            assert got == pytest.approx(want, abs=0.03 if r == 3.0 else 1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_ordered_regime_is_ln_effective_radius_and_chaos_at_large_radius(seed):
    from itermap.analysis import edge_of_chaos_scan

    scan = edge_of_chaos_scan([0.4, 0.7, 3.0], [0.2, 1.0], n=60, seeds=2, steps=600,
                              transient=300, rng=seed, density=0.3)
    # undriven and ordered: the state falls to 0, whose rate is ln rho_eff (closed form)
    np.testing.assert_allclose(scan.exponents[:, :, :2], np.log(scan.effective_radius[:, :, :2]),
                               atol=5e-3)
    assert np.all(scan.mean[1, 2] > 0.1)  # a = 1, rho = 3: chaotic
    assert scan.exponents.shape == (2, 2, 3) and scan.stderr.shape == (2, 3)
    again = edge_of_chaos_scan([0.4, 0.7, 3.0], [0.2, 1.0], n=60, seeds=2, steps=600,
                               transient=300, rng=seed, density=0.3)
    assert np.array_equal(again.exponents, scan.exponents)
    assert 0.7 < scan.edge[1] < 3.0


def test_scan_refuses_bad_settings_naming_them():
    from itermap.analysis import edge_of_chaos_scan

    for kw, name in [({"radii": [0.0]}, "radii"), ({"leaks": [1.5]}, "leaks"),
                     ({"leaks": [0.0]}, "leaks"), ({"radii": []}, "radii"),
                     ({"n": 1}, "n"), ({"input_scale": -1.0}, "input_scale")]:
        args = {"radii": [1.0], "leaks": [0.5], **kw}
        with pytest.raises(ValueError, match=name):
            edge_of_chaos_scan(args.pop("radii"), args.pop("leaks"), steps=5, **args)


def test_the_report_kind_runs_the_shipped_spec(tmp_path):
    import json

    from itermap.analysis._report import run_report
    from itermap.analysis._report._spec import examples

    spec = examples()["reservoirs"]
    small = tmp_path / "small.toml"
    small.write_text(spec.read_text().replace("num = 11", "num = 3").replace(
        "steps = 500", "steps = 100").replace("seeds = 4", "seeds = 2").replace(
        "n = 100", "n = 30"))
    run_report(small, tmp_path / "out")
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    text = json.dumps(res)
    assert "edge_of_chaos" in text and "largest_exponent" in text
