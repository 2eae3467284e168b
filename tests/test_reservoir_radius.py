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
