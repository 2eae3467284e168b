"""The large-map solvers on every kind of sparse network (round 15): the map's own sparse
Jacobian (``Map.sparse_jacobian``) against central differences of ``step`` and the dense
``jacobian``, and the points of ``method="homotopy"`` and ``"newton-krylov"`` on leaky,
driven, biased and function-block networks, each checked by a residual computed here from
the weights by a plain product (and ``scipy.optimize.root`` started at it)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import find_fixed_points
from itermap.analysis.fixed_points import _newton_krylov as nk
from itermap.analysis.fixed_points._common import _Power
from itermap.block_functions import FeedForward
from itermap.systems import henon


def _weights(n, gain, density, seed, dtype=np.float64):
    g = np.random.default_rng(seed)
    W = sp.random(n, n, density=density, random_state=g, data_rvs=g.standard_normal,
                  format="csr")
    return (W * (gain / np.sqrt(n * density))).astype(dtype).tocsr()


def _plain_step(W, x, *, leak=1.0, bias=0.0, act=np.tanh, u=None, n_in=0):
    """``(1 - a) x + a f(W x' + b)``, ``x'`` the state with its first ``n_in`` units set
    to the input ``u`` (which the new state holds too): the map from the weights."""
    x = np.array(x, dtype=np.float64)
    if n_in:
        x[:n_in] = u
    y = (1.0 - leak) * x + leak * act(W @ x + bias)
    if n_in:
        y[:n_in] = u
    return y


def _central_differences(step, x, h=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        cols.append((step(x + e) - step(x - e)) / (2.0 * h))
    return np.stack(cols, axis=1)


N = 40
W40 = _weights(N, 1.5, 0.15, 0)
B40 = np.random.default_rng(1).normal(0.0, 0.3, N)
# sparse blocks and a dense one (not densified: under half the matrix is stored)
BM_MIX = itermap.BlockMatrix([20, 10, 10], {
    (0, 0): _weights(20, 1.5, 0.2, 3), (2, 2): _weights(10, 1.2, 0.3, 4),
    (1, 0): np.random.default_rng(5).normal(0.0, 0.3, (10, 20))})
W_MIX = BM_MIX.to_dense()
KINDS = {  # name: (map, input, the plain step from the weights)
    "plain": (itermap.IterativeMap(W40), None, lambda x: _plain_step(W40, x)),
    "leaky": (itermap.IterativeMap(W40, leak=0.3), None,
              lambda x: _plain_step(W40, x, leak=0.3)),
    "bias, leaky": (itermap.IterativeMap(W40, bias=B40, leak=0.6), None,
                    lambda x: _plain_step(W40, x, leak=0.6, bias=B40)),
    "relu, leaky": (itermap.IterativeMap(W40, bias=B40, activation="relu", leak=0.5), None,
                    lambda x: _plain_step(W40, x, leak=0.5, bias=B40,
                                          act=lambda z: np.maximum(z, 0.0))),
    "driven, leaky": (itermap.IterativeMap(W40, bias=B40, sizes=(4, N - 4), input_block=0,
                                           leak=0.4), np.full(4, 0.7),
                      lambda x: _plain_step(W40, x, leak=0.4, bias=B40, u=0.7, n_in=4)),
    "blocks, leaky": (itermap.IterativeMap(BM_MIX, bias=B40, leak=0.7), None,
                      lambda x: _plain_step(W_MIX, x, leak=0.7, bias=B40)),
    "float32, leaky": (itermap.IterativeMap(W40.astype(np.float32), leak=0.5), None,
                       lambda x: _plain_step(W40.astype(np.float32).astype(np.float64), x,
                                             leak=0.5)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_sparse_jacobian_of_every_sparse_kind_is_the_derivative_of_step(kind):
    m, u, plain = KINDS[kind]
    x = np.random.default_rng(2).normal(0.0, 0.5, N)
    J = m.sparse_jacobian(x, u)
    assert sp.issparse(J) and J.shape == (N, N)
    assert J.count_nonzero() <= m.jacobian_nnz
    # the plain step reproduces the map, and the Jacobian is its derivative
    tol = 1e-6 if "float32" in kind else 1e-12
    np.testing.assert_allclose(np.asarray(m.step(x, u), dtype=float), plain(x), atol=tol)
    np.testing.assert_allclose(J.toarray(), _central_differences(plain, x), atol=1e-6)
    np.testing.assert_allclose(J.toarray(), m.jacobian(x, u), atol=tol)


def test_maps_without_a_sparse_jacobian_say_so():
    rng = np.random.default_rng(3)
    ff = FeedForward(rng.normal(size=(6, 20)) * 0.3, None, rng.normal(size=(20, 6)) * 0.3,
                     None, seq_len=1, activation="tanh")
    bm = itermap.BlockMatrix([20, 20], {(0, 0): _weights(20, 1.2, 0.2, 1),
                                        (1, 1): _weights(20, 1.2, 0.2, 2)})
    with_functions = itermap.IterativeMap(bm, functions={(1, 0): ff}, leak=0.5)
    dense = itermap.random_rnn(20, rng=0)                  # dense weights: no sparse copy
    for m in (with_functions, dense, henon(), itermap.as_map(henon())):
        assert m.jacobian_nnz is None
        assert m.sparse_jacobian(np.zeros(m.dim)) is None


@settings(max_examples=25, deadline=None)
@given(leak=st.floats(0.05, 1.0), density=st.floats(0.05, 0.5), seed=st.integers(0, 10**6),
       n_in=st.integers(0, 3))
def test_the_sparse_jacobian_matches_central_differences_for_any_leak(leak, density, seed,
                                                                      n_in):
    n = 12
    W = _weights(n, 1.5, density, seed)
    u = np.linspace(-0.5, 0.5, n_in) if n_in else None
    m = itermap.IterativeMap(W, sizes=(n_in, n - n_in) if n_in else None,
                             input_block=0 if n_in else None, leak=leak)
    x = np.random.default_rng(seed).normal(0.0, 0.7, n)
    J = m.sparse_jacobian(x, u)
    fd = _central_differences(lambda y: _plain_step(W, y, leak=leak, u=u, n_in=n_in), x)
    np.testing.assert_allclose(J.toarray(), fd, atol=1e-7)


@pytest.mark.parametrize("kind", ["leaky", "driven, leaky", "bias, leaky", "blocks, leaky"])
def test_the_newton_matrix_the_solvers_factor_is_the_tangent_minus_one(kind):
    # the LU preconditioner of Newton-Krylov inverts D F - I as the map's tangent gives it
    m, u, _ = KINDS[kind]
    F = _Power(m, 1, u, np)
    x = np.random.default_rng(4).normal(0.0, 0.5, N)
    A, _ = nk.tangent_operator(F, x)
    M = nk._preconditioner(F, x)
    V = np.random.default_rng(5).normal(size=(N, 3))
    np.testing.assert_allclose(M.matmat(A.matmat(V)), V, atol=1e-9)


def _check_points(P, plain, tol=1e-9, root=True):
    for p in np.asarray(P):
        assert np.linalg.norm(plain(p) - p) <= tol
        if not root:
            continue
        # scipy's hybr (its own code) started next to the point converges to it
        sol = scipy.optimize.root(lambda x: plain(x) - x, p + 1e-6, method="hybr", tol=1e-13)
        assert np.linalg.norm(plain(sol.x) - sol.x) <= tol
        assert np.linalg.norm(sol.x - p) <= 1e-7


@pytest.mark.parametrize("seed,leak,gain", [(0, 0.3, 1.5), (1, 0.5, 1.8), (2, 0.1, 1.6)])
def test_leaky_sparse_networks_have_the_points_of_their_leak_free_map(seed, leak, gain):
    # x = (1 - a) x + a tanh(W x) has the points of x = tanh(W x), whatever a is
    n = 80
    W = _weights(n, gain, 0.1, seed)
    x0 = np.random.default_rng(seed + 10).normal(0.0, 0.5, (2, n))
    leaky, plain = itermap.IterativeMap(W, leak=leak), itermap.IterativeMap(W)
    for method in ("homotopy", "newton-krylov"):
        fp = find_fixed_points(leaky, x0, method=method, progress=False)
        assert len(fp.points) >= 1, method      # (a Newton-Krylov start may wander on)
        assert method != "homotopy" or np.all(fp.status == 0), fp.status
        _check_points(fp.points, lambda x: _plain_step(W, x, leak=leak))
        _check_points(fp.points, lambda x: _plain_step(W, x), root=False)  # leak-free
    ref = find_fixed_points(plain, x0, method="homotopy", progress=False)
    got = find_fixed_points(leaky, x0, method="homotopy", progress=False)
    assert np.max(np.linalg.norm(np.asarray(got.points), axis=1)) > 1.0   # non-trivial
    assert len(got.points) == len(ref.points)


def test_driven_leaky_networks_by_both_methods():
    n, n_in = 80, 5
    W = _weights(n, 1.6, 0.1, 3)
    b = np.random.default_rng(4).normal(0.0, 0.2, n)
    u = np.full(n_in, 0.7)
    m = itermap.IterativeMap(W, bias=b, sizes=(n_in, n - n_in), input_block=0, leak=0.5)
    x0 = np.random.default_rng(5).normal(0.0, 0.5, (2, n))
    for method in ("homotopy", "newton-krylov"):
        fp = find_fixed_points(m, x0, method=method, inputs=u, progress=False)
        assert len(fp.points) >= 1, method
        _check_points(fp.points, lambda x: _plain_step(W, x, leak=0.5, bias=b, u=u, n_in=n_in))


def test_function_block_networks_by_both_methods():
    # no sparse Jacobian (the weights' copy lacks the function's tangent): GMRES on tangent
    rng = np.random.default_rng(6)
    F1, F2 = rng.normal(size=(6, 40)) * 0.3, rng.normal(size=(40, 6)) * 0.3
    ff = FeedForward(F1, None, F2, None, seq_len=1, activation="tanh")
    W0, W1 = _weights(40, 1.4, 0.15, 7), _weights(40, 1.4, 0.15, 8)
    fm = itermap.IterativeMap(itermap.BlockMatrix([40, 40], {(0, 0): W0, (1, 1): W1}),
                              functions={(1, 0): ff})

    def plain(x):
        top = np.tanh(W0 @ x[:40])
        bottom = np.tanh(W1 @ x[40:] + F2 @ np.tanh(F1 @ x[:40]))
        return np.concatenate([top, bottom])

    x1 = np.random.default_rng(9).normal(0.0, 0.5, (2, 80))
    for method, starts in (("homotopy", x1[:1]), ("newton-krylov", x1)):
        fp = find_fixed_points(fm, starts, method=method, progress=False)
        assert len(fp.points) >= 1, method
        _check_points(fp.points, plain)


def test_a_float32_leaky_network_by_both_methods():
    n = 60
    W = _weights(n, 1.6, 0.15, 0, dtype=np.float32)
    m = itermap.IterativeMap(W, leak=0.5)
    x0 = np.random.default_rng(5).normal(0.0, 0.5, (2, n))
    for method in ("homotopy", "newton-krylov"):
        fp = find_fixed_points(m, x0, method=method, progress=False)
        assert len(fp.points) >= 1 and np.all(fp.status == 0), method
        # the default tol of float32 starts: 100 eps
        _check_points(fp.points, lambda x: _plain_step(W.astype(np.float64), x, leak=0.5),
                      tol=100 * np.finfo(np.float32).eps, root=False)
