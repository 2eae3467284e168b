"""Property-based robustness: random sizes, patterns, densities, dtypes and batch shapes.

Nothing may fail except with the documented ValueError or TypeError, and
nothing may return a silent NaN.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap, iterate

TOKENS = st.one_of(
    st.sampled_from(["0", "I", "D", "W"]),
    st.floats(0.0, 1.0).map(lambda p: f"R={p:.3f}"),
    st.integers(0, 4).map(lambda n: f"S={n}"),
    st.integers(0, 3).map(lambda n: f"Row={n}"),
    st.sampled_from(["X", "R=2", "S=-1", "Row=1.5", "", "W=1"]),  # bad tokens
)
ACTS = st.sampled_from(["tanh", "relu", "elu", "sigmoid", "identity", "softplus", "sin"])


@st.composite
def maps_and_states(draw):
    n = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    pattern = [[draw(TOKENS) for _ in range(n)] for _ in range(n)]
    scale = draw(st.floats(0.0, 3.0))
    seed = draw(st.integers(0, 2 ** 20))
    acts = draw(st.one_of(ACTS, st.lists(ACTS, min_size=n, max_size=n)))
    input_block = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    batch = draw(st.one_of(st.none(), st.integers(1, 4)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return sizes, pattern, scale, seed, acts, input_block, batch, dtype


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maps_and_states(), st.integers(0, 6), st.sampled_from(["all", "last"]))
def test_core_never_crashes_or_returns_nan(case, steps, keep):
    sizes, pattern, scale, seed, acts, input_block, batch, dtype = case
    try:
        bm = BlockMatrix.from_pattern(sizes, pattern, rng=seed, scale=scale)
    except ValueError as exc:
        assert str(exc)  # a bad token or count, named in the message
        return
    m = IterativeMap(bm, activation=acts, input_block=input_block)
    rng = np.random.default_rng(seed)
    shape = (m.dim,) if batch is None else (batch, m.dim)
    x0 = rng.normal(size=shape).astype(dtype)
    inputs = None
    if input_block is not None:
        inputs = rng.normal(size=(*shape[:-1], m.input_size)).astype(dtype)
    traj = iterate(m, x0, steps, inputs=inputs, keep=keep)
    assert traj.states.shape[1:] == shape
    assert np.all(np.isfinite(traj.states))
    v = rng.normal(size=(*shape, 2))
    Jv = m.tangent(x0, v, inputs)
    J = m.jacobian(x0, inputs)
    assert np.all(np.isfinite(J)) and np.all(np.isfinite(Jv))
    np.testing.assert_allclose(Jv, J @ v, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.integers(0, 8))
def test_non_finite_values_are_refused_everywhere(bad, where):
    W = np.eye(3) * 0.5
    flat = W.ravel().copy()
    flat[where] = bad
    for make in (lambda A: IterativeMap(A), lambda A: BlockMatrix([3], {(0, 0): A}),
                 lambda A: itermap.systems.linear(A)):
        try:
            make(flat.reshape(3, 3))
        except ValueError as exc:
            assert "NaN" in str(exc) or "inf" in str(exc)
        else:
            raise AssertionError("non-finite weights were accepted")
    x0 = np.zeros(3)
    x0[where % 3] = bad
    try:
        iterate(IterativeMap(W), x0, 3)
    except ValueError as exc:
        assert "NaN or inf" in str(exc)
    else:
        raise AssertionError("a non-finite start was accepted")


@st.composite
def small_maps(draw):
    n = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    tokens = st.sampled_from(["0", "W", "D", "R=0.5", "Row=1", "I"])
    drawn = [[draw(tokens) for _ in range(n)] for _ in range(n)]
    # identity blocks only where the block is square
    pattern = [[t if t != "I" or sizes[i] == sizes[j] else "W" for j, t in enumerate(row)]
               for i, row in enumerate(drawn)]
    seed = draw(st.integers(0, 2 ** 16))
    bm = BlockMatrix.from_pattern(sizes, pattern, rng=seed, scale=draw(st.floats(0.1, 2.5)))
    act = draw(ACTS)
    driven = n > 1 and draw(st.booleans())
    m = IterativeMap(bm, activation=act, input_block=0 if driven else None)
    batch = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-0.5, 0.5, size=(batch, m.dim))
    u = rng.uniform(-0.5, 0.5, size=m.input_size) if driven else None
    return m, x0, u


def _finite(*arrays):
    return all(np.all(np.isfinite(np.asarray(a))) for a in arrays if a is not None)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_maps())
def test_impulse_response_is_finite_or_refused(case):
    import itermap.analysis as analysis

    m, x0, u = case
    for method in ("linear", "nonlinear"):
        try:
            res = analysis.impulse_response(m, x0[0], 6, inputs=u, method=method)
        except ValueError as exc:  # DivergenceError included
            assert str(exc)
            continue
        assert res.norms.shape[0] == 7 and _finite(res.norms)
        assert res.length is None or 0 <= res.length <= 6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_maps())
def test_fixed_points_are_true_fixed_points(case):
    import itermap.analysis as analysis

    m, x0, u = case
    res = analysis.find_fixed_points(m, x0, inputs=u, max_iter=30)
    assert res.n_unconverged <= x0.shape[0]
    assert _finite(res.points, res.residuals, res.eigenvalues)
    if len(res.points):
        uu = None if u is None else np.tile(u, (len(res.points), 1))
        gap = np.linalg.norm(m.step(res.points, uu) - res.points, axis=-1)
        assert np.all(gap <= 1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_maps(), st.integers(1, 3))
def test_lyapunov_spectrum_is_finite_or_refused(case, every):
    import itermap.analysis as analysis

    if not hasattr(analysis, "lyapunov_spectrum"):
        return
    m, x0, u = case
    k = m.dim - m.input_size
    try:
        res = analysis.lyapunov_spectrum(m, x0, 20, inputs=u, reorthonormalize_every=every, rng=0)
    except ValueError as exc:  # a divergence
        assert "step" in str(exc)
        return
    # -inf is an answer (issue 12 section 7): an exact collapse (relu, zero blocks)
    lam = np.concatenate([res.exponents, res.per_trajectory.ravel()])
    assert res.exponents.shape == (k,) and not np.any(np.isnan(lam) | (lam == np.inf))
    assert res.n_collapsed == int(np.isneginf(res.exponents).sum())
    assert np.all(np.diff(res.exponents[np.isfinite(res.exponents)]) <= 1e-12)
    assert np.all(np.isneginf(res.exponents[k - res.n_collapsed:]))  # at the bottom
