"""Lyapunov spectra (issue 3): closed forms, literature values, identities, reference loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import itermap
from itermap import DivergenceError, IterativeMap, iterate
from itermap.analysis import (
    LyapunovSpectrum,
    entropy_rate,
    kaplan_yorke_dimension,
    lyapunov_spectrum,
)
from itermap.systems import henon, linear, logistic
from tests.conftest import to_np


def _tanh_net(n, gain, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, gain / np.sqrt(n), size=(n, n))
    return IterativeMap(W), W


def _mean_log_det(W, states):
    """Trajectory average of log|det J(x_t)| for x -> tanh(W x), from the states alone.

    J(x_t) = diag(1 - x_{t+1}^2) W, so log|det J| = sum log(1 - x_{t+1}^2) + log|det W|.
    """
    nxt = states[1:]  # (T, B, n)
    per_step = np.log1p(-nxt * nxt).sum(axis=-1) + np.linalg.slogdet(W)[1]
    return per_step.mean(axis=0)  # (B,)


def _max_block_cond(W, states, every):
    """Largest condition number of the Jacobian products over blocks of ``every`` steps."""
    nxt = states[1:]
    worst = 1.0
    for b in range(nxt.shape[1]):
        for t0 in range(0, nxt.shape[0], every):
            P = np.eye(W.shape[0])
            for t in range(t0, min(t0 + every, nxt.shape[0])):
                P = ((1.0 - nxt[t, b] ** 2)[:, None] * W) @ P
            worst = max(worst, float(np.linalg.cond(P)))
    return worst


# -- classic maps -------------------------------------------------------------------------------

def test_logistic_r4_is_ln2():
    x0 = np.random.default_rng(0).uniform(0.05, 0.45, size=(16, 1))
    res = lyapunov_spectrum(logistic(4.0), x0, 5000, transient=100, rng=0)
    assert res.exponents.shape == (1,) and res.per_trajectory.shape == (16, 1)
    assert abs(res.exponents[0] - np.log(2.0)) < 1e-3
    assert np.all(np.abs(res.per_trajectory[:, 0] - np.log(2.0)) < 2e-3)


def test_logistic_per_row_parameters_closed_forms():
    # r = 2.6: fixed point 1 - 1/r with f' = 2 - r; r = 3.2: period-2 orbit with
    # f'(p1) f'(p2) = -r^2 + 2r + 4; r = 4: ln 2
    r = np.array([2.6, 3.2, 4.0])
    x0 = np.array([[0.3], [0.3], [0.3]])
    res = lyapunov_spectrum(logistic(r), x0, 4000, transient=400, rng=0)
    per = res.per_trajectory[:, 0]
    assert abs(per[0] - np.log(0.6)) < 1e-9
    assert abs(per[1] - 0.5 * np.log(abs(-3.2**2 + 2 * 3.2 + 4))) < 1e-9
    assert abs(per[2] - np.log(2.0)) < 3e-3


def test_henon_literature_values_and_determinant_identity():
    # 10^5 steps of 8 trajectories; QR every 5 steps (the product of the R factors does not
    # depend on the spacing), which keeps the test to a few seconds
    x0 = np.random.default_rng(0).uniform(-0.1, 0.1, size=(8, 2))
    res = lyapunov_spectrum(henon(), x0, 100_000, transient=1000, reorthonormalize_every=5, rng=0)
    np.testing.assert_allclose(res.exponents, [0.4192, -1.6232], atol=3e-3)
    assert abs(res.exponents.sum() - np.log(0.3)) < 1e-8
    assert np.all(np.abs(res.per_trajectory.sum(axis=1) - np.log(0.3)) < 1e-8)
    assert abs(res.kaplan_yorke_dimension - (1 + 0.4192 / 1.6232)) < 5e-3
    assert res.entropy_rate == pytest.approx(res.exponents[0])
    assert np.all(res.stderr < 1e-3) and np.all(res.stderr > 0)


def test_linear_map_log_abs_eigenvalues(xp):
    rng = np.random.default_rng(3)
    S = rng.normal(size=(4, 4))
    A = S @ np.diag([1.3, -0.9, 0.5, -0.2]) @ np.linalg.inv(S)
    ref = np.sort(np.log(np.abs(np.linalg.eigvals(A))))[::-1]
    m = linear(xp.asarray(A))
    x0 = xp.zeros((2, 4), dtype=xp.float64)
    res = lyapunov_spectrum(m, x0, 400, transient=300, rng=0)
    np.testing.assert_allclose(res.exponents, ref, atol=1e-6)
    top2 = lyapunov_spectrum(m, x0, 400, transient=300, k=2, rng=0)
    np.testing.assert_allclose(top2.exponents, ref[:2], atol=1e-6)
    top1 = lyapunov_spectrum(m, x0, 400, transient=300, k=1, rng=5)
    np.testing.assert_allclose(top1.exponents, ref[:1], atol=1e-6)
    assert type(res.state) is type(x0)  # stays on the input's backend


def test_linear_map_complex_pair():
    # a rotation-scaling block: two exponents ln 0.8, plus a real one ln 1.1
    c, s = 0.8 * np.cos(0.7), 0.8 * np.sin(0.7)
    A = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.1]])
    res = lyapunov_spectrum(linear(A), np.zeros(3), 300, transient=50, rng=0)
    np.testing.assert_allclose(res.exponents, [np.log(1.1), np.log(0.8), np.log(0.8)],
                               atol=1e-9)


# -- networks -----------------------------------------------------------------------------------

def test_tanh_network_below_edge_of_chaos():
    n, gain = 20, 0.5
    unit = np.random.default_rng(1).normal(0.0, 1.0 / np.sqrt(n), size=(n, n))
    m = IterativeMap(gain * unit)
    ref = np.sort(np.log(gain) + np.log(np.abs(np.linalg.eigvals(unit))))[::-1]
    x0 = np.random.default_rng(0).normal(size=(2, n))
    res = lyapunov_spectrum(m, x0, 5000, transient=200, rng=0)
    assert np.max(np.abs(res.exponents - ref)) < 1e-3
    assert np.max(np.abs(res.per_trajectory - ref)) < 1e-3
    assert res.kaplan_yorke_dimension == 0.0 and res.entropy_rate == 0.0


@pytest.mark.parametrize("every", [1, 3])
def test_sum_equals_mean_log_det_on_chaotic_tanh(every):
    m, W = _tanh_net(30, 2.0, seed=1)
    x0 = np.random.default_rng(5).normal(size=(3, 30))
    steps, transient = 600, 50
    res = lyapunov_spectrum(m, x0, steps, transient=transient, reorthonormalize_every=every, rng=0)
    states = iterate(m, x0, transient + steps).states[transient:]
    np.testing.assert_allclose(res.per_trajectory.sum(axis=1), _mean_log_det(W, states),
                               atol=1e-10)
    assert res.exponents[0] > 0.05  # chaotic: the identity is not about a trivial case
    assert 1 < res.kaplan_yorke_dimension < 30


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 8), gain=st.floats(0.3, 3.0), seed=st.integers(0, 10**6),
       every=st.integers(1, 4), batch=st.integers(1, 3))
def test_sum_identity_property(n, gain, seed, every, batch):
    m, W = _tanh_net(n, gain, seed)
    x0 = np.random.default_rng(seed + 1).normal(size=(batch, n))
    states = iterate(m, x0, 40).states
    # with QRs spaced out, the smallest direction keeps only ~eps * cond of the Jacobian
    # product over one spacing as relative precision (saturated units, f' ~ 1e-10 at
    # gain 3, or a nearly singular W): spaced QRs are checked where that is below 1e8
    # (over 300 random cases, all misses of 1e-9 had cond > 1e9)
    assume(every == 1 or _max_block_cond(W, states, every) < 1e8)
    res = lyapunov_spectrum(m, x0, 40, reorthonormalize_every=every, rng=seed)
    np.testing.assert_allclose(res.per_trajectory.sum(axis=1), _mean_log_det(W, states),
                               atol=1e-9)
    assert np.all(np.diff(res.exponents) <= 0)
    assert np.all(np.diff(res.per_trajectory, axis=1) <= 0)


def test_against_plain_per_trajectory_loop():
    # the straightforward method: dense Jacobian, J @ Q, numpy.linalg.qr, one trajectory at a
    # time, from the same initial frames (rng draws standard normals of shape (B, dim, k))
    m, W = _tanh_net(7, 1.8, seed=2)
    B, k, steps = 3, 4, 150
    x0 = np.random.default_rng(9).normal(size=(B, 7))
    res = lyapunov_spectrum(m, x0, steps, k=k, rng=11)
    frames = np.random.default_rng(11).standard_normal((B, 7, k))
    ref = []
    for b in range(B):
        x, Q = x0[b], np.linalg.qr(frames[b])[0]
        logs = np.zeros(k)
        for _ in range(steps):
            J = (1.0 - np.tanh(W @ x) ** 2)[:, None] * W
            Q, R = np.linalg.qr(J @ Q)
            logs += np.log(np.abs(np.diag(R)))
            x = np.tanh(W @ x)
        ref.append(np.sort(logs / steps)[::-1])
    np.testing.assert_allclose(res.per_trajectory, np.array(ref), atol=1e-12)
    np.testing.assert_allclose(res.exponents, np.mean(ref, axis=0), atol=1e-12)


def test_sparse_network_matches_dense_and_batch_rows_match_single_runs():
    ms = itermap.random_rnn(400, gain=1.5, density=0.02, rng=3)
    W = ms.block_matrix.to_sparse()
    md = IterativeMap(W.toarray())
    x0 = np.random.default_rng(0).normal(size=(2, 400))
    rs = lyapunov_spectrum(ms, x0, 60, k=5, transient=10, rng=1)
    rd = lyapunov_spectrum(md, x0, 60, k=5, transient=10, rng=1)
    np.testing.assert_allclose(rs.per_trajectory, rd.per_trajectory, atol=1e-10)
    single = lyapunov_spectrum(ms, x0[0], 60, k=5, transient=10, rng=1)
    np.testing.assert_allclose(single.per_trajectory[0], rs.per_trajectory[0], atol=1e-10)
    assert not single.batched and rs.batched


def test_fewer_qrs_give_the_same_exponents():
    m, _ = _tanh_net(30, 1.6, seed=8)
    x0 = np.random.default_rng(1).normal(size=(2, 30))
    r1 = lyapunov_spectrum(m, x0, 500, transient=50, rng=0)
    r5 = lyapunov_spectrum(m, x0, 500, transient=50, reorthonormalize_every=5, rng=0)
    np.testing.assert_allclose(r5.per_trajectory, r1.per_trajectory, atol=1e-9)


# -- driven maps --------------------------------------------------------------------------------

def test_conditional_exponents_constant_input():
    rng = np.random.default_rng(6)
    nh, nx = 10, 3
    W_hh = rng.normal(0, 0.5 / np.sqrt(nh), size=(nh, nh))
    W_hx = rng.normal(size=(nh, nx))
    b = rng.normal(size=nh) * 0.3
    m = IterativeMap.from_rnn(W_hh, W_hx, b)
    u = rng.normal(size=nx)
    # fixed point of h -> tanh(W_hh h + W_hx u + b) and its Jacobian
    h = np.zeros(nh)
    for _ in range(500):
        h = np.tanh(W_hh @ h + W_hx @ u + b)
    J = (1.0 - h**2)[:, None] * W_hh
    ref = np.sort(np.log(np.abs(np.linalg.eigvals(J))))[::-1]
    x0 = np.random.default_rng(1).normal(size=(2, nh + nx))
    res = lyapunov_spectrum(m, x0, 4000, transient=200, inputs=u, rng=0)
    assert res.exponents.shape == (nh,) and res.dim == nh
    assert np.max(np.abs(res.exponents - ref)) < 1e-3
    # the same input, given as a sequence, is the same computation
    seq = np.broadcast_to(u, (4200, 2, nx))
    res_seq = lyapunov_spectrum(m, x0, 4000, transient=200, inputs=seq, rng=0)
    np.testing.assert_allclose(res_seq.per_trajectory, res.per_trajectory, atol=1e-12)


def test_conditional_exponents_input_sequence_sum_identity():
    rng = np.random.default_rng(7)
    nh, nx, steps = 8, 2, 300
    W_hh = rng.normal(0, 1.5 / np.sqrt(nh), size=(nh, nh))
    W_hx = rng.normal(size=(nh, nx))
    m = IterativeMap.from_rnn(W_hh, W_hx)
    seq = rng.normal(size=(steps, nx))
    x0 = np.zeros(nh + nx)
    res = lyapunov_spectrum(m, x0, steps, inputs=seq, rng=0)
    hs = iterate(m, x0, steps, inputs=seq).states[1:, nx:]
    ref = (np.log1p(-hs**2).sum(axis=1) + np.linalg.slogdet(W_hh)[1]).mean()
    assert abs(res.exponents.sum() - ref) < 1e-10


# -- continuation, saving, history, progress ----------------------------------------------------

def test_continue_from_equals_one_long_run(tmp_path):
    m, _ = _tanh_net(9, 1.7, seed=12)
    x0 = np.random.default_rng(2).normal(size=(3, 9))
    whole = lyapunov_spectrum(m, x0, 300, transient=20, k=4, rng=0)
    first = lyapunov_spectrum(m, x0, 120, transient=20, k=4, rng=0)
    path = itermap.save(first, tmp_path / "piece.npz")
    loaded = itermap.load(path)
    assert isinstance(loaded, LyapunovSpectrum)
    np.testing.assert_array_equal(loaded.exponents, first.exponents)
    rest = lyapunov_spectrum(m, None, 180, continue_from=loaded, rng=0)
    assert rest.steps == 300 and rest.transient == 20
    np.testing.assert_allclose(rest.per_trajectory, whole.per_trajectory, atol=1e-12)
    np.testing.assert_allclose(rest.exponents, whole.exponents, atol=1e-12)
    assert rest.history_steps[-1] == 300 and np.all(np.diff(rest.history_steps) > 0)
    np.testing.assert_allclose(rest.history[-1], rest.exponents, atol=1e-12)


def test_history_checkpoints():
    m, _ = _tanh_net(5, 1.5, seed=0)
    res = lyapunov_spectrum(m, np.ones((2, 5)) * 0.1, 1000, reorthonormalize_every=3, rng=0)
    assert res.history.shape == (len(res.history_steps), 5)
    assert 80 <= len(res.history_steps) <= 120
    assert res.history_steps[-1] == 1000
    np.testing.assert_allclose(res.history[-1], res.exponents, atol=1e-14)
    # each checkpoint is the running estimate: check one against a shorter run
    i = 40
    short = lyapunov_spectrum(m, np.ones((2, 5)) * 0.1, int(res.history_steps[i]),
                              reorthonormalize_every=3, rng=0)
    np.testing.assert_allclose(res.history[i], short.exponents, atol=1e-12)


def test_progress_bar(capsys):
    lyapunov_spectrum(henon(), np.array([0.1, 0.1]), 50, progress=True, rng=0)
    assert "lyapunov" in capsys.readouterr().err


def test_kaplan_yorke():
    assert kaplan_yorke_dimension([0.4192, -1.6232]) == pytest.approx(1 + 0.4192 / 1.6232)
    assert kaplan_yorke_dimension([-0.1, -0.3]) == 0.0
    assert kaplan_yorke_dimension([0.2, 0.1]) == 2.0
    assert np.isnan(kaplan_yorke_dimension([0.2, 0.1], dim=5))  # top-k: undetermined
    assert kaplan_yorke_dimension([0.5, 0.1, -0.3, -1.0], dim=10) == pytest.approx(3 + 0.3)


# -- bad input ------------------------------------------------------------------------------------

def test_bad_arguments():
    m = henon()
    x0 = np.array([0.1, 0.1])
    with pytest.raises(ValueError, match="k=3 exceeds .* dim=2"):
        lyapunov_spectrum(m, x0, 10, k=3, rng=0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        lyapunov_spectrum(m, x0, 10, k=0, rng=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        lyapunov_spectrum(m, x0, 10, k=1.5, rng=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        lyapunov_spectrum(m, x0, 0, rng=0)
    with pytest.raises(ValueError, match="transient must be >= 0"):
        lyapunov_spectrum(m, x0, 10, transient=-1, rng=0)
    with pytest.raises(ValueError, match="reorthonormalize_every must be >= 1"):
        lyapunov_spectrum(m, x0, 10, reorthonormalize_every=0, rng=0)
    with pytest.raises(ValueError, match="x0 contains NaN"):
        lyapunov_spectrum(m, np.array([np.nan, 0.0]), 10, rng=0)
    with pytest.raises(ValueError, match="autonomous"):
        lyapunov_spectrum(m, x0, 10, inputs=np.ones(1), rng=0)
    with pytest.raises(ValueError, match="dimension 3"):
        lyapunov_spectrum(m, np.zeros(3), 10, rng=0)


def test_bad_arguments_driven_and_continue():
    m = IterativeMap.from_rnn(np.eye(3) * 0.5, np.ones((3, 2)))
    x0 = np.zeros(5)
    with pytest.raises(ValueError, match="k=4 exceeds the 3 free directions"):
        lyapunov_spectrum(m, x0, 10, k=4, inputs=np.ones(2), rng=0)
    with pytest.raises(ValueError, match="driven"):
        lyapunov_spectrum(m, x0, 10, rng=0)
    with pytest.raises(ValueError, match="one input per step"):
        lyapunov_spectrum(m, x0, 10, transient=5, inputs=np.ones((10, 2)), rng=0)
    prev = lyapunov_spectrum(m, x0, 10, inputs=np.ones(2), rng=0)
    with pytest.raises(ValueError, match="x0=None"):
        lyapunov_spectrum(m, x0, 10, inputs=np.ones(2), continue_from=prev, rng=0)
    with pytest.raises(ValueError, match="transient must be 0"):
        lyapunov_spectrum(m, None, 10, inputs=np.ones(2), continue_from=prev, transient=3, rng=0)
    with pytest.raises(ValueError, match="k=2 differs"):
        lyapunov_spectrum(m, None, 10, inputs=np.ones(2), continue_from=prev, k=2, rng=0)
    with pytest.raises(TypeError, match="LyapunovSpectrum"):
        lyapunov_spectrum(m, None, 10, inputs=np.ones(2), continue_from={"steps": 3}, rng=0)
    with pytest.raises(ValueError, match="dimension"):
        lyapunov_spectrum(henon(), None, 10, continue_from=prev, rng=0)


def test_state_overflow_names_the_step():
    # r = 5 sends x = 0.3 out of [0, 1] and then to -inf: 0.3 -> 1.05 -> -0.26 -> ...
    x, t = 0.3, 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(x):
            x, t = 5.0 * x * (1.0 - x), t + 1
    with pytest.raises(DivergenceError, match=rf"state overflowed .* at step {t}\b"):
        lyapunov_spectrum(logistic(5.0), np.array([0.3]), 200, rng=0)
    with pytest.raises(DivergenceError, match=rf"at step {t} of the transient"):
        lyapunov_spectrum(logistic(5.0), np.array([0.3]), 10, transient=200, rng=0)


def test_tangent_overflow_names_the_steps():
    # e^(60 * 20) overflows within one spacing of 60 steps; the state (0) stays finite
    m = linear(np.diag([np.exp(20.0), 0.5]))
    with pytest.raises(DivergenceError, match="tangent vectors overflowed .* between steps "
                                              "1 and 60"):
        lyapunov_spectrum(m, np.zeros(2), 100, reorthonormalize_every=60, rng=0)
    # every step: fine
    res = lyapunov_spectrum(m, np.zeros(2), 100, transient=30, rng=0)
    np.testing.assert_allclose(res.exponents, [20.0, np.log(0.5)], atol=1e-9)


def test_exact_collapse_is_minus_infinity():
    # x = 0.5 is the critical point of the logistic map: f'(0.5) = 0 at step 1, so the
    # product of derivatives along that orbit is exactly 0; the other start stays finite
    res = lyapunov_spectrum(logistic(3.7), np.array([[0.3], [0.5]]), 10, rng=0)
    assert res.per_trajectory[1, 0] == -np.inf and np.isfinite(res.per_trajectory[0, 0])
    assert res.exponents[0] == -np.inf and res.n_collapsed == 1
    assert res.stderr[0] == np.inf  # only one of the two trajectories collapsed
    # a network with a zero row and column: the full spectrum has one -inf, the top-2 none
    W = np.diag([0.0, 0.9, 0.7])
    m = IterativeMap(W, activation="identity")
    res = lyapunov_spectrum(m, np.ones(3), 50, transient=200, rng=0)
    np.testing.assert_allclose(res.exponents[:2], np.log([0.9, 0.7]), atol=1e-9)
    assert res.exponents[2] == -np.inf and res.n_collapsed == 1
    assert res.kaplan_yorke_dimension == 0.0 and res.entropy_rate == 0.0
    res = lyapunov_spectrum(m, np.ones(3), 50, k=2, transient=20, rng=0)
    np.testing.assert_allclose(res.exponents, np.log([0.9, 0.7]), atol=1e-6)
    assert res.n_collapsed == 0


@pytest.mark.parametrize("every", [1, 3])
def test_mlp_is_nilpotent_all_minus_infinity(every):
    # a plain MLP (layer blocks on the sub-diagonal, input frozen): J^depth = 0, the
    # finite impulse response of the paper; every direction collapses exactly
    m = itermap.mlp_continuum([3, 5, 4], rng=0)
    x0 = np.random.default_rng(0).normal(size=(2, m.dim))
    res = lyapunov_spectrum(m, x0, 30, inputs=np.ones(3), reorthonormalize_every=every, rng=0)
    assert np.all(res.exponents == -np.inf) and res.n_collapsed == 9
    assert np.all(res.per_trajectory == -np.inf) and np.all(res.stderr == 0.0)
    assert res.kaplan_yorke_dimension == 0.0 and res.entropy_rate == 0.0


def test_relu_killed_units_collapse_exactly():
    # ReLU units with a negative bias and small weights are dead: their rows of J are 0,
    # so a full spectrum of 4 units with 2 dead has exactly two -inf exponents
    W = np.diag([0.5, 0.8, 0.3, 0.6])
    m = IterativeMap(W, bias=np.array([1.0, 1.0, -5.0, -5.0]), activation="relu")
    res = lyapunov_spectrum(m, np.ones(4), 40, transient=200, rng=0)
    np.testing.assert_allclose(res.exponents[:2], np.log([0.8, 0.5]), atol=1e-9)
    assert np.all(res.exponents[2:] == -np.inf) and res.n_collapsed == 2


def test_tiny_but_nonzero_collapse_stays_finite():
    # |R_ii| = 1e-150 per step is tiny but not zero: the exponent is ln(1e-150), finite
    m = linear(np.diag([0.5, 1e-150]))
    res = lyapunov_spectrum(m, np.ones(2), 20, transient=3, rng=0)
    np.testing.assert_allclose(res.exponents, [np.log(0.5), np.log(1e-150)], rtol=1e-12)
    assert res.n_collapsed == 0


def test_minus_infinity_survives_save_and_load(tmp_path):
    m = IterativeMap(np.diag([0.0, 0.9, 0.7]), activation="identity")
    res = lyapunov_spectrum(m, np.ones((2, 3)), 20, rng=0)
    itermap.save(res, tmp_path / "res.npz")
    back = itermap.load(tmp_path / "res.npz")
    np.testing.assert_array_equal(back.exponents, res.exponents)
    np.testing.assert_array_equal(back.per_trajectory, res.per_trajectory)
    assert back.exponents[-1] == -np.inf and back.n_collapsed == 1


def test_kaplan_yorke_and_entropy_with_minus_infinity_and_bad_input():
    # closed forms: D = j + S_j / |l_{j+1}|; a -inf next exponent adds nothing
    assert kaplan_yorke_dimension([0.5, -np.inf]) == 1.0
    assert kaplan_yorke_dimension([0.5, 0.1, -1.2, -np.inf]) == pytest.approx(2 + 0.6 / 1.2)
    assert kaplan_yorke_dimension([-np.inf, -np.inf]) == 0.0
    assert entropy_rate([0.5, 0.1, -1.2, -np.inf]) == pytest.approx(0.6)
    for bad in ([], [np.nan, -1.0], [np.inf, -1.0]):
        with pytest.raises(ValueError, match="exponents"):
            kaplan_yorke_dimension(bad)
        with pytest.raises(ValueError, match="exponents"):
            entropy_rate(bad)
    with pytest.raises(TypeError, match="exponents"):
        kaplan_yorke_dimension(["a", "b"])


def test_float32_state():
    m = IterativeMap(np.random.default_rng(0).normal(0, 0.5 / 4, size=(16, 16))
                     .astype(np.float32))
    res = lyapunov_spectrum(m, np.ones((2, 16), dtype=np.float32) * 0.1, 200, transient=100, rng=0)
    W = np.asarray(m.block_matrix.to_dense(), dtype=np.float64)
    ref = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    assert np.max(np.abs(res.exponents - ref)) < 5e-2
    assert res.exponents.dtype == np.float64
    assert to_np(res.tangents).dtype == np.float32


def test_overflow_between_qrs_names_the_span():
    x, t = 0.3, 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(x):
            x, t = 5.0 * x * (1.0 - x), t + 1
    lo = (t - 1) // 4 * 4 + 1
    with pytest.raises(DivergenceError, match=rf"state overflowed .* between steps {lo} and "
                                              rf"{lo + 3}\b"):
        lyapunov_spectrum(logistic(5.0), np.array([0.3]), 200, reorthonormalize_every=4, rng=0)


# -- reorthonormalisation (issue 16) ------------------------------------------------------------

def _householder_reference(m, x0, steps, transient, k=None):
    """The plain loop: J formed, numpy.linalg.qr every step, same random start frame."""
    from itermap.analysis.lyapunov._spectrum import _initial_frame

    x = np.atleast_2d(x0).copy()
    k = m.dim if k is None else k
    Q = _initial_frame(m, x.shape[0], k, x, np, 0)
    acc = np.zeros((x.shape[0], k))
    for t in range(transient + steps):
        J = m.jacobian(x)
        x = m.step(x)
        Q, R = np.linalg.qr(J @ Q)
        if t >= transient:
            acc += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    return np.sort(acc / steps, axis=1)[:, ::-1]


@pytest.mark.parametrize(("n", "k", "batch"), [(24, 24, 2), (60, 50, 1), (64, 8, 3), (5, 3, 4)])
def test_cholesky_qr_and_gram_schmidt_agree_with_householder(n, k, batch):
    m, _ = _tanh_net(n, 1.5, seed=n)
    x0 = np.random.default_rng(0).normal(size=(batch, n))
    res = lyapunov_spectrum(m, x0, 300, k=k, transient=20, rng=0)
    ref = _householder_reference(m, x0, 300, 20, k=k)
    np.testing.assert_allclose(res.per_trajectory, ref, atol=1e-10, rtol=0)


def test_reorthonormalizer_falls_back_to_householder_on_ill_conditioned_frames():
    from itermap._running._reorth import Reorthonormalizer

    rng = np.random.default_rng(3)
    # cond ~ 1e17 > 1 / eps, not undone by scaling the columns (which CholeskyQR is immune to)
    U = np.linalg.qr(rng.normal(size=(2, 40, 10)))[0]
    Y = (U * np.logspace(0, -17, 10)) @ np.linalg.qr(rng.normal(size=(10, 10)))[0]
    reorth = Reorthonormalizer()
    Q, logd, R = reorth(Y, want_r=True)
    assert reorth.fallbacks == 1
    Qh, Rh = np.linalg.qr(Y)
    np.testing.assert_allclose(logd, np.log(np.abs(np.diagonal(Rh, axis1=1, axis2=2))),
                               rtol=1e-12)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-14)
    Y = rng.normal(size=(2, 40, 10)) * np.logspace(0, -12, 10)  # cond ~ 1e12: Gram 1e24
    reorth = Reorthonormalizer()
    Q, logd, R = reorth(Y, want_r=True)
    assert reorth.fallbacks == 0  # shifted CholeskyQR3
    np.testing.assert_allclose(np.swapaxes(Q, 1, 2) @ Q, np.broadcast_to(np.eye(10), (2, 10, 10)),
                               atol=1e-14)
    # |R_jj| to the backward error eps ||Y|| of a stable QR
    Rh = np.linalg.qr(Y)[1]
    np.testing.assert_allclose(np.exp(logd), np.abs(np.diagonal(Rh, axis1=1, axis2=2)),
                               rtol=1e-10, atol=1e3 * np.finfo(float).eps * np.abs(Y).max())
    np.testing.assert_allclose(Q @ R, Y, atol=1e-14)
    Y = rng.normal(size=(2, 40, 10))  # well conditioned: Cholesky, no fallback
    reorth = Reorthonormalizer()
    Q, logd, R = reorth(Y, want_r=True)
    assert reorth.fallbacks == 0
    np.testing.assert_allclose(np.swapaxes(Q, 1, 2) @ Q, np.broadcast_to(np.eye(10), (2, 10, 10)),
                               atol=1e-13)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-13)


def test_spaced_qrs_warn_where_the_bottom_is_lost():
    # the case: a gain-2 network, QR every 5 steps moves the smallest exponent
    m, _ = _tanh_net(64, 2.0, seed=1)
    x0 = np.random.default_rng(0).normal(size=(1, 64))
    ref = lyapunov_spectrum(m, x0, 400, transient=50, rng=0)
    with pytest.warns(RuntimeWarning, match=r"reorthonormalize_every <= \d"):
        res = lyapunov_spectrum(m, x0, 400, transient=50, reorthonormalize_every=5, rng=0)
    assert res.qr_error > 1e-6
    assert abs(res.exponents[-1] - ref.exponents[-1]) > 1e-6  # the warning was earned
    np.testing.assert_allclose(res.exponents[:8], ref.exponents[:8], atol=1e-8)
    # a mild network at the same spacing: no warning, and the whole spectrum agrees
    m, _ = _tanh_net(32, 1.1, seed=2)
    x0 = np.random.default_rng(0).normal(size=(1, 32))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = lyapunov_spectrum(m, x0, 400, transient=50, reorthonormalize_every=3, rng=0)
    ref = lyapunov_spectrum(m, x0, 400, transient=50, rng=0)
    assert res.qr_error <= 1e-6
    np.testing.assert_allclose(res.exponents, ref.exponents, atol=1e-9)


@pytest.mark.parametrize("batch", [None, 5])
@pytest.mark.parametrize("every", [1, 3])
def test_henon_vector_loop_matches_the_array_path(batch, every):
    # the same map through FunctionMap takes the general (array) path
    h = henon()
    fm = itermap.FunctionMap(h.step, 2, jacobian=h.jacobian)
    rng = np.random.default_rng(4)
    x0 = rng.uniform(-0.1, 0.1, size=2 if batch is None else (batch, 2))
    a = lyapunov_spectrum(h, x0, 3000, transient=100, reorthonormalize_every=every, rng=0)
    b = lyapunov_spectrum(fm, x0, 3000, transient=100, reorthonormalize_every=every, rng=0)
    np.testing.assert_allclose(a.per_trajectory, b.per_trajectory, atol=1e-12)
    np.testing.assert_allclose(a.history, b.history, atol=1e-12)
    np.testing.assert_allclose(a.state, b.state, atol=1e-9)
    # continuing works from the vector loop's final frame
    c = lyapunov_spectrum(h, None, 500, continue_from=a, rng=0)
    d = lyapunov_spectrum(fm, None, 500, continue_from=b, rng=0)
    np.testing.assert_allclose(c.per_trajectory, d.per_trajectory, atol=1e-11)


def test_henon_vector_loop_divergence_is_named():
    with pytest.raises(DivergenceError, match="step"):
        lyapunov_spectrum(henon(), np.array([[5.0, 5.0], [0.1, 0.1]]), 100, rng=0)


# -- covariant Lyapunov vectors (issue 16) ------------------------------------------------------

def _non_normal_linear():
    S = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 2.0]])
    lam = np.array([1.5, 0.8, -0.3])
    return S @ np.diag(lam) @ np.linalg.inv(S), S, lam


def test_clv_of_a_linear_map_are_its_eigenvectors():
    from itermap.analysis import covariant_lyapunov_vectors

    A, S, lam = _non_normal_linear()
    x0 = np.random.default_rng(0).normal(size=(2, 3))
    clv = covariant_lyapunov_vectors(linear(A), x0, 60, transient=60, save_every=5, rng=0)
    assert clv.vectors.shape == (12, 2, 3, 3) and clv.times.tolist() == list(range(5, 61, 5))
    eig = S / np.linalg.norm(S, axis=0)
    cos = np.abs(np.einsum("tbij,ij->tbj", clv.vectors, eig))
    np.testing.assert_allclose(cos, 1.0, atol=1e-10)
    np.testing.assert_allclose(clv.exponents, np.log(np.abs(lam)), atol=0.05)
    np.testing.assert_allclose(clv.covariant_exponents, np.log(np.abs(lam)), atol=1e-10)
    # angles: those between the eigenvectors, closed form
    ref = np.arccos(np.clip(np.abs(eig.T @ eig), 0, 1))
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(clv.angles, np.broadcast_to(ref, clv.angles.shape), atol=1e-8)
    pr = (eig ** 2).sum(0) ** 2 / (eig ** 4).sum(0)
    np.testing.assert_allclose(clv.participation_ratio[0, 0], pr, rtol=1e-8)


def test_clv_are_covariant_and_henon_shows_near_tangencies():
    from itermap.analysis import covariant_lyapunov_vectors

    h = henon()
    x0 = np.array([0.1, 0.1])
    clv = covariant_lyapunov_vectors(h, x0, 4000, transient=200, rng=0)
    assert clv.vectors.shape == (4000, 2, 2)
    # the states along the run, by a plain loop: J(x_t) v_t is parallel to v_{t+1}
    x, states = x0.copy(), []
    for _ in range(200 + 4000):
        x = h.step(x)
        states.append(x)
    states = np.array(states[200:])  # states[t - 1] is the state after measured step t
    J = h.jacobian(states[:-1])  # (T-1, 2, 2) at the states carrying v_1 .. v_{T-1}
    Jv = np.einsum("tij,tjk->tik", J, clv.vectors[:-1])
    Jv /= np.linalg.norm(Jv, axis=1, keepdims=True)
    cos = np.abs(np.einsum("tik,tik->tk", Jv, clv.vectors[1:]))
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    np.testing.assert_allclose(clv.covariant_exponents, [0.4192, -1.6232], atol=2e-2)
    # near-tangencies: the angle between the unstable and stable directions comes close to 0
    ang = clv.angles[:, 0, 1]
    assert ang.min() < 0.01 and np.mean(ang < 0.05) > 0.003
    assert np.all((clv.participation_ratio >= 1 - 1e-12) & (clv.participation_ratio <= 2))


def test_clv_bad_arguments_collapse_and_save(tmp_path):
    from itermap.analysis import CovariantVectors, covariant_lyapunov_vectors

    with pytest.raises(ValueError, match="save_every"):
        covariant_lyapunov_vectors(henon(), np.zeros(2), 5, save_every=10, rng=0)
    with pytest.raises(ValueError, match="k=3"):
        covariant_lyapunov_vectors(henon(), np.zeros(2), 5, k=3, rng=0)
    with pytest.raises(ValueError, match="GiB"):
        covariant_lyapunov_vectors(linear(np.eye(400) * 0.5), np.ones(400), 10 ** 5, rng=0)
    with pytest.raises(ValueError, match="collapsed exactly"):
        covariant_lyapunov_vectors(IterativeMap(np.diag([0.0, 0.9]), activation="identity"),
                                   np.ones(2), 10, transient=2, rng=0)
    clv = covariant_lyapunov_vectors(henon(), np.zeros(2), 20, transient=20, save_every=4, rng=0)
    itermap.save(clv, tmp_path / "clv.npz")
    back = itermap.load(tmp_path / "clv.npz")
    assert isinstance(back, CovariantVectors)
    np.testing.assert_array_equal(back.vectors, clv.vectors)


# -- finite-time exponents (issue 16) -----------------------------------------------------------

def test_finite_time_exponents_henon_mean_identity_and_variance():
    from itermap.analysis import finite_time_exponents

    x0 = np.random.default_rng(0).uniform(-0.1, 0.1, size=(4, 2))
    short = finite_time_exponents(henon(), x0, 10, 20000, rng=0)
    long = finite_time_exponents(henon(), x0, 200, 20000, rng=0)
    assert short.exponents.shape == (2000, 4, 2) and long.exponents.shape == (100, 4, 2)
    # det J = -0.3 everywhere: every window's exponents sum to ln 0.3 exactly
    np.testing.assert_allclose(short.exponents.sum(axis=-1), np.log(0.3), atol=1e-12)
    np.testing.assert_allclose(short.mean, [0.4192, -1.6232], atol=5e-3)
    np.testing.assert_allclose(long.mean, [0.4192, -1.6232], atol=5e-3)
    # the spread falls with the window: about 1/sqrt(window) for a mixing system
    assert np.all(long.std < short.std / 2.5)
    one = finite_time_exponents(henon(), x0[0], 50, 500, rng=0)
    assert one.exponents.shape == (10, 2) and not one.batched


def test_finite_time_exponents_linear_map_closed_form_and_errors():
    from itermap.analysis import finite_time_exponents

    fte = finite_time_exponents(linear(np.diag([0.5, 2.0])), np.ones(2), 5, 50, transient=30, rng=0)
    np.testing.assert_allclose(fte.exponents, np.broadcast_to(np.log([2.0, 0.5]), (10, 2)),
                               atol=1e-12)
    np.testing.assert_allclose(fte.std, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        finite_time_exponents(henon(), np.zeros(2), 0, 10, rng=0)
    with pytest.raises(ValueError, match="window"):
        finite_time_exponents(henon(), np.zeros(2), 20, 10, rng=0)
    with pytest.raises(ValueError, match="steps"):
        finite_time_exponents(henon(), np.zeros(2), 2, -1, rng=0)


# -- figures ------------------------------------------------------------------------------------

def test_plots_draw_minus_infinity_on_the_bottom_edge():
    import matplotlib

    matplotlib.use("Agg")
    from itermap.analysis import plots

    res = {"exponents": np.array([0.4, -1.0, -np.inf]), "stderr": np.array([0.1, 0.1, 0.0])}
    ax = plots.lyapunov_spectrum(res)
    marks = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert len(marks) == 1 and marks[0].get_xdata().tolist() == [3.0]
    ax.figure.canvas.draw()
    y_display = marks[0].get_transform().transform((3.0, 0.0))[1]
    assert y_display == pytest.approx(ax.transAxes.transform((0.0, 0.0))[1])  # the bottom
    assert np.all(np.isfinite(ax.get_ylim()))
    hist = {"history": np.array([[0.5, -np.inf], [0.4, -np.inf]]), "history_steps": [10, 20]}
    ax = plots.lyapunov_history(hist)
    marks = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert len(marks) == 1 and marks[0].get_xdata().tolist() == [10.0, 20.0]


def test_clv_and_finite_time_figures():
    import matplotlib

    matplotlib.use("Agg")
    from itermap.analysis import covariant_lyapunov_vectors, finite_time_exponents, plots

    clv = covariant_lyapunov_vectors(henon(), np.array([0.1, 0.1]), 500, transient=100, rng=0)
    ax = plots.clv_angles(clv, bins=20)
    assert ax.get_xlim() == (0.0, np.pi / 2) and len(ax.patches) == 1
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="pair"):
        plots.clv_angles(clv, pair=(0, 0))
    fte = finite_time_exponents(henon(), np.array([0.1, 0.1]), 10, 2000, rng=0)
    ax = plots.finite_time_histogram(fte)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["$\\lambda_{1}$", "$\\lambda_{2}$"]
    means = sorted(ln.get_xdata()[0] for ln in ax.lines
                   if ln.get_linestyle() == ":" and ln.get_label() != "_zero")
    np.testing.assert_allclose(means, sorted(fte.exponents.mean(axis=0)), atol=1e-12)
