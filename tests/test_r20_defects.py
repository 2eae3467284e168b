"""Round 20: defects earlier rounds noticed and left alone, each checked against something
independent of the code under test (a closed form, a plain NumPy loop, SciPy, mpmath)."""

import numpy as np
import pytest
from scipy.optimize import brentq

import itermap
from itermap import IterativeMap
from itermap.analysis import (
    basins,
    continuation,
    find_fixed_points,
    lyapunov_spectrum,
    sample_states,
)

# -- 1: integer and bool starts are cast to the map's floating dtype ---------------------
# x -> tanh(2 x) per unit: fixed points 0 and +-r with r = tanh(2 r), found here by brentq
R2 = brentq(lambda r: np.tanh(2 * r) - r, 0.5, 1.0)


def _diag_map(dtype=np.float64):
    return IterativeMap((2.0 * np.eye(2)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("starts", [np.array([[1, 1], [-1, 1], [0, -1]]),
                                    [[1, 1], [-1, 1], [0, -1]],
                                    np.array([[1, 1], [0, 1]], dtype=np.uint8),
                                    np.array([[True, True], [False, True]])],
                         ids=["int64", "list of ints", "uint8", "bool"])
def test_find_fixed_points_casts_integer_and_bool_starts_to_the_maps_dtype(dtype, starts):
    fp = find_fixed_points(_diag_map(dtype), starts)
    assert fp.points.dtype == dtype
    pts = np.asarray(fp.points, dtype=float)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    # every point found is (0 or +-r) per coordinate, with r from brentq
    for p in pts:
        for c in p:
            assert min(abs(c), abs(abs(c) - R2)) < tol, pts
    # the start (1, 1) lies in the basin of (r, r) under Newton and iteration alike
    assert np.min(np.max(np.abs(pts - R2), axis=1)) < tol


@pytest.mark.parametrize("bad", [np.zeros((2, 2), complex), np.zeros((2, 2), object),
                                 [[1j, 0], [0, 0]], [[1, 2], [3]]],
                         ids=["complex", "object", "list of complex", "ragged"])
def test_find_fixed_points_still_refuses_complex_object_and_ragged_starts(bad):
    with pytest.raises(TypeError, match="x0"):
        find_fixed_points(_diag_map(), bad)


def _plain_loop(W, x, steps):
    for _ in range(steps):
        x = np.tanh(x @ W.T)
    return x


def test_basins_takes_bool_starts_as_0_1_states():
    W = 2.0 * np.eye(2)
    starts = np.array([[True, False], [False, True], [True, True]])
    res = basins(IterativeMap(W), starts, steps=30)
    np.testing.assert_allclose(res.final, _plain_loop(W, starts.astype(float), 30),
                               rtol=0, atol=1e-14)


def test_sample_states_takes_integer_and_bool_x0_in_the_maps_dtype():
    m = _diag_map(np.float32)
    for x0 in (np.array([1, 0]), np.array([True, False]), [1, 0]):
        x = sample_states(m, 3, steps=0, x0=x0, rng=0)   # steps=0, no noise: x0 itself
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, np.tile(np.array([1.0, 0.0], np.float32), (3, 1)))


def test_continuation_takes_a_bool_start():
    # x -> tanh(g x): from x = 1 the branch is the positive root of tanh(g r) = r
    res = continuation(lambda g: IterativeMap(np.array([[g]])), [2.0, 2.1], np.array([True]))
    assert abs(float(np.asarray(res.points)[0, 0]) - R2) < 1e-8


def test_a_network_map_takes_a_list_state_in_its_own_dtype():
    # main refused every list ("the state is builtins, the map's arrays are numpy")
    m = itermap.random_rnn(4, gain=0.9, rng=0, dtype=np.float32)
    W = np.asarray(m.block_matrix.to_dense(), dtype=np.float64)
    out = itermap.iterate(m, [1, 0, 0, 0], 3, keep="last").final
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _plain_loop(W, np.array([1.0, 0, 0, 0]), 3), rtol=1e-5)
    # and an analysis built on check_start with it
    spec = lyapunov_spectrum(m, [0.5, 0.0, 0.0, 0.0], 20)
    assert np.all(np.isfinite(spec.exponents))


# -- 2: tanh's derivative in saturation, exact where 1 - tanh^2 rounds to 0 ------------------
def test_spectra_table_entry_of_a_saturated_unit_is_the_closed_form():
    # x -> tanh(30 x) from x = 1 stays at 1.0 (tanh(30) rounds to 1): the exponent is
    # log(30 sech^2 30) = log 120 - 60 - 2 log(1 + e^-60), where 1 - tanh^2 would give -inf
    mp = pytest.importorskip("mpmath")
    from itermap.analysis import spectra_table

    exact = float(mp.log(30 * mp.sech(mp.mpf(30)) ** 2))
    t = spectra_table([IterativeMap(np.array([[30.0]]))], steps=50, x0=np.array([1.0]),
                      floor=-100.0, executor="serial", seed=0)
    assert np.isfinite(t.raw[0][0])
    np.testing.assert_allclose(t.raw[0][0], exact, rtol=1e-13)
    np.testing.assert_allclose(t.spectra[0, 0], exact, rtol=1e-13)


def test_the_autoencoders_tanh_derivative_is_exact_in_saturation():
    # spectrum_embedding's encoder backprop had its own 1 - tanh^2: 0 for |a| > 19.1, where
    # sech^2 a is still ~4 e^{-2|a|} (here checked in 50-digit arithmetic)
    mp = pytest.importorskip("mpmath")
    from itermap.analysis._spectra_table import _ENCODER

    a = np.array([0.3, -5.0, 15.0, 19.5, -25.0, 300.0])
    with mp.workdps(50):
        exact = np.array([float(mp.sech(mp.mpf(float(v))) ** 2) for v in a])
    got = _ENCODER["tanh"][1](a)
    assert np.all(got[:5] > 0)
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=0)


# -- 3: the fused sparse Lyapunov step's tanh derivative in saturation -----------------------
def _csr_times(W, V):
    """``W @ V`` for a CSR ``W`` and a long-double ``V``, row by row (SciPy has no float128)."""
    out = np.zeros((W.shape[0],) + V.shape[1:], dtype=V.dtype)
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    np.add.at(out, rows, W.data.astype(V.dtype).reshape((-1,) + (1,) * (V.ndim - 1))
              * V[W.indices])
    return out


def _cgs2(Y):
    """Q R = Y by Gram-Schmidt run twice (stable in Y's own precision): Q and diag(R)."""
    Q, r = np.zeros_like(Y), np.zeros(Y.shape[1], dtype=Y.dtype)
    for j in range(Y.shape[1]):
        v = Y[:, j].copy()
        for _ in range(2):
            v -= Q[:, :j] @ (Q[:, :j].T @ v)
        r[j] = np.sqrt(v @ v)
        Q[:, j] = v / r[j]
    return Q, r


def _long_double_spectrum(W, x, k, steps, seed):
    """Benettin's top-k exponents of x -> tanh(W x) in long double, tanh' as sech^2 from
    exp(-2|z|) (exact in saturation), from lyapunov_spectrum's initial frame (rng=seed)."""
    ld = np.longdouble
    x = x.astype(ld)
    Q, _ = _cgs2(np.random.default_rng(seed).standard_normal((1, W.shape[0], k))[0].astype(ld))
    acc = np.zeros(k, dtype=ld)
    for _ in range(steps):
        z = _csr_times(W, x)
        e = np.exp(-2 * np.abs(z))
        Q, r = _cgs2((4 * e / (1 + e) ** 2)[:, None] * _csr_times(W, Q))
        acc += np.log(r)
        x = np.tanh(z)
    return np.sort((acc / steps).astype(float))[::-1]


def test_fused_sparse_step_of_a_saturated_network_matches_a_long_double_loop(monkeypatch):
    # gain 50: ~70 % of the units past |z| = 19.1, where the fused step's 1 - y^2 was 0 and
    # just below, where it kept few digits: main's exponents were off by 1.3e-2 (2.5e-9 now)
    from itermap._running import _fused_sparse
    from itermap._running._threads import OPTIONS

    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("long double is double precision on this platform")
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)  # this small map runs it too
    calls = {"n": 0}
    advance = _fused_sparse.FusedSparseStep.advance

    def counted(self, **kw):
        calls["n"] += 1
        return advance(self, **kw)

    monkeypatch.setattr(_fused_sparse.FusedSparseStep, "advance", counted)
    m = itermap.random_rnn(1000, gain=50.0, density=0.01, rng=3)
    W = m.block_matrix.to_sparse().tocsr()
    x0 = np.random.default_rng(1).normal(size=1000)
    z = W @ np.tanh(W @ x0)
    assert np.mean(np.abs(z) > 19.1) > 0.5   # most units saturated
    got = lyapunov_spectrum(m, x0, 300, k=8, rng=0).exponents
    assert calls["n"] == 300                 # every step on the fused sparse path
    ref = _long_double_spectrum(W, x0, 8, 300, seed=0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


# -- 4: BlockMatrix.from_pattern's "Row=k" draws O(m k), not an m x n table of keys ----------
def _row_block(m, n, k, rng):
    """The m x n block (1, 0) of a pattern whose only block is "Row=k"."""
    W = itermap.BlockMatrix.from_pattern([n, m], [["0", "0"], [f"Row={k}", "0"]], rng=rng)
    return W.to_sparse().tocsr()[n:, :n]


@pytest.mark.parametrize("n, k", [(5, 2), (6, 3), (5, 3), (4, 4), (7, 1)])
def test_row_k_draws_k_distinct_columns_per_row_uniformly(n, k):
    from itertools import combinations

    from scipy.stats import chisquare

    m = 6000
    B = _row_block(m, n, k, rng=11)
    assert B.shape == (m, n)
    assert np.all(np.diff(B.indptr) == k)               # exactly k per row
    assert np.all(B.data != 0)                           # stored entries are the draws
    subsets = {c: i for i, c in enumerate(combinations(range(n), k))}
    counts = np.zeros(len(subsets))
    for r in range(m):
        cols = B.indices[B.indptr[r]:B.indptr[r + 1]]
        assert len(set(cols.tolist())) == k                # distinct
        counts[subsets[tuple(sorted(cols.tolist()))]] += 1
    if len(subsets) > 1:                                 # every k-subset equally likely
        assert chisquare(counts).pvalue > 1e-4, counts


def test_row_k_needs_no_m_by_n_memory():
    import tracemalloc

    m = n = 20000
    tracemalloc.start()
    try:
        B = _row_block(m, n, 5, rng=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.all(np.diff(B.indptr) == 5)
    assert peak < m * n * 8 / 50, peak                   # main: 16 m n bytes of keys


# -- fuzz of the analyses with unusual dtypes (long double, bool and complex inputs) --------
LONG = pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                          reason="long double is double precision on this platform")


@LONG
def test_long_double_states_are_refused_by_name_where_lapack_runs():
    # main: "array type float128 is unsupported in linalg", naming nothing
    from itermap.analysis import covariant_lyapunov_vectors, finite_time_exponents
    from itermap.systems import henon

    x = np.array([0.1, 0.1], dtype=np.longdouble)
    for call in (lambda: lyapunov_spectrum(henon(), x, 10),
                 lambda: finite_time_exponents(henon(), x, 2, 4),
                 lambda: covariant_lyapunov_vectors(henon(), x, 10)):
        with pytest.raises(TypeError, match="x0: float128|x0: float96"):
            call()
    # henon follows its states' dtype: find_fixed_points would run in long double
    with pytest.raises(TypeError, match="starts x0: float"):
        find_fixed_points(henon(), x[None], progress=False)


@LONG
def test_long_double_starts_of_a_float64_map_are_cast_to_it():
    fp = find_fixed_points(_diag_map(), np.array([[1, 1]], dtype=np.longdouble),
                           progress=False)
    assert fp.points.dtype == np.float64
    np.testing.assert_allclose(np.asarray(fp.points)[0], [R2, R2], rtol=1e-10)


def _driven(w):
    """h -> tanh(w u): a driven map whose state is [u, h]; h* = tanh(w u)."""
    return IterativeMap(np.array([[0.0, 0.0], [w, 0.0]]), sizes=[1, 1], input_block=0)


def test_find_fixed_points_takes_bool_inputs_and_names_complex_ones():
    fp = find_fixed_points(_driven(0.7), np.zeros((1, 2)), inputs=np.array([True]),
                           progress=False)
    np.testing.assert_allclose(np.asarray(fp.points)[0, 1], np.tanh(0.7), rtol=1e-12)
    with pytest.raises(TypeError, match="inputs"):
        find_fixed_points(_driven(0.7), np.zeros((1, 2)), inputs=[1j], progress=False)


@LONG
def test_long_double_inputs_to_a_lyapunov_analysis_are_refused_by_name():
    with pytest.raises(TypeError, match="inputs: float"):
        lyapunov_spectrum(_driven(0.7), np.zeros(2), 4,
                          inputs=np.array([0.5], dtype=np.longdouble))


def test_newton_lyapunov_scan_names_complex_gains():
    from itermap.analysis import newton_lyapunov_scan

    # main: a list of complex was "float() argument must be ...", an array of them
    # lost its imaginary part with a ComplexWarning
    for gains in ([1j, 0.5], np.array([0.5 + 1j])):
        with pytest.raises(TypeError, match="gains"):
            newton_lyapunov_scan(gains, n=4, steps=8, trials=1, lyapunov_steps=20)


def test_a_saturated_sigmoid_unit_has_its_finite_exponent():
    # sigmoid' was s (1 - s): 0 past z ~ 37, so x -> sigmoid(50 x) from x = 1 read -inf;
    # closed form log(50 e^-50 / (1 + e^-50)^2) (mpmath), and sigma' to 60 digits
    mp = pytest.importorskip("mpmath")
    m = IterativeMap(np.array([[50.0]]), activation="sigmoid")
    lam = lyapunov_spectrum(m, np.array([1.0]), 50, transient=5).exponents
    with mp.workdps(60):
        e50 = mp.exp(-50)
        exact = float(mp.log(50 * e50 / (1 + e50) ** 2))
        z = np.array([-700.0, -40.0, -20.0, -1e-3, 0.0, 0.5, 20.0, 40.0, 700.0])
        ref = np.array([float(mp.exp(-abs(mp.mpf(v))) / (1 + mp.exp(-abs(mp.mpf(v)))) ** 2)
                        for v in z])
    np.testing.assert_allclose(lam, [exact], rtol=1e-13)
    got = itermap.ACTIVATIONS["sigmoid"].derivative(z, np)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("x0", [np.array([True]), np.array([1]), np.array([1], np.uint8), [1],
                                [[True]]], ids=["bool", "int", "uint8", "list", "list of bool"])
def test_state_analyses_take_integer_bool_and_list_starts(x0):
    # x -> tanh(30 x) from 1 stays at 1.0 (tanh 30 rounds to 1): every exponent is
    # log(30 sech^2 30) and every state 1 (mpmath for the closed form)
    mp = pytest.importorskip("mpmath")
    from itermap.analysis import (
        covariant_lyapunov_vectors,
        finite_time_exponents,
        lyapunov_scan,
        orbit_diagram,
    )

    exact = float(mp.log(30 * mp.sech(mp.mpf(30)) ** 2))
    m = IterativeMap(np.array([[30.0]]))

    def family(g):
        return IterativeMap(np.array([[g]]))

    for lam in (lyapunov_spectrum(m, x0, 20).exponents,
                finite_time_exponents(m, x0, 5, 20, transient=0).exponents,
                covariant_lyapunov_vectors(m, x0, 20, transient=5).exponents,
                lyapunov_scan(family, [30.0], x0, 20, transient=0).exponents):
        np.testing.assert_allclose(np.asarray(lam).ravel(), exact, rtol=1e-13)
    np.testing.assert_array_equal(
        np.asarray(orbit_diagram(family, [30.0], x0, transient=2, keep=3).states).ravel(), 1.0)
