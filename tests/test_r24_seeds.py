"""Round 24, r24-seeds: defects found on cases the earlier tests did not cover (other
seeds, gains, sizes and dtypes), each checked against a closed form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import impulse_response


# -- impulse_response: a small response is not a response that ended -----------------------
@pytest.mark.parametrize("dtype, a, steps", [(np.float64, 0.01, 120), (np.float32, 0.1, 30)])
def test_a_decaying_response_below_sqrt_tiny_keeps_its_norm_and_rate(dtype, a, steps):
    # x -> a x never forgets: its response is a^k, representable down to the dtype's
    # smallest normal; squaring it for the Frobenius norm underflowed at sqrt(tiny) and
    # reported a finite FIR length (81 for a = 0.01 in float64, 20 in float32)
    m = itermap.IterativeMap(np.array([[a]], dtype=dtype), activation="identity")
    r = impulse_response(m, np.ones(1, dtype=dtype), steps)
    assert r.length is None
    assert r.decay_rate == pytest.approx(-np.log(a), rel=1e-4)
    k = np.arange(steps + 1)
    expect = np.asarray(a, dtype=dtype) ** k.astype(dtype)
    np.testing.assert_allclose(r.norms[:, 0, 0], expect, rtol=1e-4 if dtype == np.float32
                               else 1e-10)
    np.testing.assert_allclose(r.total, expect, rtol=1e-4 if dtype == np.float32 else 1e-10)
    assert r.norms.dtype == dtype and r.total.dtype == dtype


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       log_rate=st.floats(np.log(2.0), np.log(1e3)))
def test_a_normal_linear_maps_response_decays_at_log_its_spectral_radius(n, seed, log_rate):
    # W = Q diag(lam) Q^T: the response's Frobenius norm is ||W^k||_F, which decays at
    # -log max|lam|, however far below sqrt(tiny) it falls within the run
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.exp(-log_rate) * rng.uniform(0.2, 1.0, n)
    lam[0] = np.exp(-log_rate)
    W = (Q * lam) @ Q.T
    steps = int(min(250.0, 600.0 / log_rate))  # the response stays above 1e-290
    r = impulse_response(itermap.IterativeMap(W, activation="identity"), np.zeros(n), steps)
    assert r.length is None
    expect = np.array([np.sqrt(np.sum((lam / lam[0]) ** (2.0 * k)))
                       for k in range(steps + 1)])
    k = np.arange(steps + 1)
    np.testing.assert_allclose(r.total / np.exp(-log_rate * k), expect, rtol=1e-6)
    assert r.decay_rate == pytest.approx(log_rate, rel=1e-3)


# -- continuation: the first step is at most max_step ------------------------------------
@pytest.mark.parametrize("w, reach", [(5.0, 2.2), (8.0, 1.2), (3.0, 3.0)])
def test_continuation_from_two_values_finds_both_folds_of_the_closed_form(w, reach):
    # x -> tanh(w x + u) folds where w (1 - x^2) = 1: at x = +-sqrt(1 - 1/w),
    # u = +-(artanh(x) - w x). Given only [u0, -u0], the first step was |2 u0| however
    # large max_step (a tenth of the range) is: from w = 5 it jumped from the upper branch
    # straight onto the lower one and reported no fold at all
    from itermap.analysis import continuation

    xf = np.sqrt(1.0 - 1.0 / w)
    uf = np.arctanh(xf) - w * xf
    u0 = reach * abs(uf)

    def make(u):
        return itermap.IterativeMap(np.array([[w]]), bias=np.array([u]))

    c = continuation(make, [u0, -u0], np.array([0.99]))
    folds = sorted(b["parameter"] for b in c.bifurcations if b["kind"] == "fold")
    np.testing.assert_allclose(folds, [uf, -uf], atol=1e-6)


# -- clv_angles: the angle of two lines does not depend on the vectors' lengths -------------
@settings(max_examples=40, deadline=None)
@given(theta=st.floats(0.0, np.pi / 2), scale_exp=st.integers(-300, 300),
       other_exp=st.integers(-300, 300), dim=st.integers(2, 4))
def test_clv_angles_of_scaled_columns_is_the_angle_between_them(theta, scale_exp, other_exp,
                                                                   dim):
    # columns e_0 and (cos t, sin t) in any dimension, at any lengths within float range:
    # the norms squared underflowed to 0 (NaN) below 1e-154 and overflowed (pi/2) above
    from itermap.analysis import clv_angles

    V = np.zeros((dim, 2))
    V[0, 0] = 10.0 ** scale_exp
    V[0, 1], V[1, 1] = np.cos(theta) * 10.0 ** other_exp, np.sin(theta) * 10.0 ** other_exp
    ang = clv_angles(V)
    assert np.all(np.isfinite(ang))
    assert ang[0, 1] == pytest.approx(theta, abs=1e-7)
    assert ang[1, 0] == ang[0, 1] and ang[0, 0] == ang[1, 1] == 0.0


@settings(max_examples=40, deadline=None)
@given(log_theta=st.floats(-14.0, 0.0), flip=st.booleans(), batch=st.integers(1, 3))
def test_clv_angles_of_near_tangent_lines_keep_their_digits(log_theta, flip, batch):
    # a near-tangency is what the angles are for: arccos of the cosine read every angle
    # below 1e-8 as exactly 0 and one of 1e-6 with 4e-5 relative error
    from itermap.analysis import clv_angles

    theta = 10.0 ** log_theta
    rng = np.random.default_rng(int(-log_theta * 1000))
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))  # any orthonormal pair in 5-D
    u, w = Q[:, 0], Q[:, 1]
    v = np.cos(theta) * u + np.sin(theta) * w
    V = np.stack([np.column_stack([u, -v if flip else v])] * batch)
    ang = clv_angles(V)
    # to the rounding of u and w themselves (about 1e-16), at every angle
    np.testing.assert_allclose(ang[:, 0, 1], theta, rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(ang[:, 1, 0], theta, rtol=1e-7, atol=1e-15)


@pytest.mark.parametrize("method", ["linear", "nonlinear"])
@pytest.mark.parametrize("batch", [False, True])
def test_a_float32_start_of_a_float64_map_gets_the_float64_response(method, batch):
    # the steps of a float64 network promote a float32 start to float64, but the norms,
    # eps and tol followed the start: x -> 0.01 x "forgot" after 23 steps (its response
    # stored as float32 underflowed), and the nonlinear method after 1 (float32's tol)
    m = itermap.IterativeMap(np.array([[0.01]]), activation="identity")
    x64 = np.ones((2, 1) if batch else 1)
    want = impulse_response(m, x64, 40, method=method)
    got = impulse_response(m, x64.astype(np.float32), 40, method=method)
    assert got.norms.dtype == np.float64
    assert got.length == want.length and got.decay_rate == want.decay_rate
    np.testing.assert_array_equal(got.norms, want.norms)
    if method == "linear":
        assert got.length == ([None, None] if batch else None)


def test_the_impulse_plot_of_a_response_below_sqrt_tiny_draws_every_step_and_no_zero():
    # the plot summed the sources' and targets' norms squared: a response below 1e-154
    # squared to 0, its line ended and a marker said "exactly 0 from here on"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import plots

    m = itermap.IterativeMap(np.diag([0.01, 0.02]), activation="identity", sizes=[1, 1])
    r = impulse_response(m, np.ones(2), 100)
    assert r.length is None
    ax = plots.impulse_response(r, total=True)
    try:
        drawn = {ln.get_label(): np.asarray(ln.get_ydata(), dtype=float) for ln in ax.lines}
        assert not any("exactly 0" in label for label in drawn)
        for label in ("response in block 0", "response in block 1", "total"):
            assert np.all(np.isfinite(drawn[label]) & (drawn[label] > 0)), label
        np.testing.assert_allclose(drawn["total"], r.total, rtol=1e-12)
    finally:
        plt.close(ax.figure)


def test_the_reports_impulse_response_numbers_keep_a_response_below_sqrt_tiny(tmp_path):
    # the report's section summed the norms squared itself: its norm_per_step read 0 from
    # 1e-154 down while its own length said the response never ends
    import json

    from itermap.analysis._report import run_report

    m = itermap.IterativeMap(np.diag([0.01, 0.02]), activation="identity", sizes=[1, 1])
    itermap.save(m, tmp_path / "map.npz")
    spec = {"networks": {"m": {"kind": "saved", "path": str(tmp_path / "map.npz")}},
            "analyses": [{"kind": "impulse_response", "networks": ["m"], "steps": 100}]}
    doc = run_report(spec, tmp_path / "report", progress=False)
    assert doc["failed"] == []
    num = json.loads((tmp_path / "report" / "results.json").read_text())["analyses"][0]
    num = num["numbers"]["m"]
    assert num["length"] is None
    per_step = np.array(num["norm_per_step"])
    assert np.all(per_step > 0)
    np.testing.assert_allclose(per_step, impulse_response(m, np.zeros(2), 100).total,
                               rtol=1e-12)


# -- Gram-Schmidt reorthonormalisation of a numerically dependent column -------------------
@pytest.mark.parametrize("tiny, n", [(1e-20, 2), (1e-20, 3), (1e-30, 3), (1e-12, 3)])
def test_a_float32_maps_strongly_contracting_direction_keeps_its_exponent(tiny, n):
    # diag(0.5, ..., tiny) in float32 (the general stepper's Gram-Schmidt for k <= 3):
    # the last column keeps ~tiny of its norm, under eps32, where "twice is enough" no
    # longer holds: its q fell onto q_1, the exponent read -33 instead of log(tiny) and
    # then -inf once the lost direction's component underflowed
    from itermap.analysis import lyapunov_spectrum

    d = np.full(n, 0.5, dtype=np.float32)
    d[-1] = tiny
    m = itermap.IterativeMap(np.diag(d), activation="identity")
    r = lyapunov_spectrum(m, np.ones(n, dtype=np.float32), 60, rng=0)
    want = np.log(np.array([0.5] * (n - 1) + [np.float32(tiny)], dtype=np.float64))
    # the random initial frame costs O(1) nats over the run
    np.testing.assert_allclose(r.exponents, want, atol=0.1)


# -- closed forms across seeds, gains and sizes (pins for what was probed and held) --------
@settings(max_examples=15, deadline=None)
@given(a=st.floats(0.1, 1.4), b=st.floats(-0.6, 0.6).filter(lambda v: abs(v) > 0.05),
       seed=st.integers(0, 2**31))
def test_henon_fixed_points_are_the_closed_form_and_the_spectrum_sums_to_log_b(a, b, seed):
    from itermap.analysis import find_fixed_points, lyapunov_spectrum
    from itermap.systems import henon

    m = henon(a, b)
    xs = (-(1 - b) + np.array([-1.0, 1.0]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    want = np.column_stack([xs, b * xs])
    box = 1.5 * np.abs(want).max() + 1.0
    fp = find_fixed_points(m, np.random.default_rng(seed).uniform(-box, box, (64, 2)))
    got = fp.points[np.argsort(fp.points[:, 0])]
    np.testing.assert_allclose(got, want, atol=1e-10)
    # det J = -b at every state: the exponents sum to log|b| along any bounded orbit
    x0 = want[1] + 1e-3  # near the fixed point of the attractor's side
    try:
        r = lyapunov_spectrum(m, x0, 300, rng=seed)
    except itermap.DivergenceError:
        return  # an orbit that escapes has no spectrum to check
    assert r.exponents.sum() == pytest.approx(np.log(abs(b)), abs=1e-10)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), seed=st.integers(0, 2**31), spread=st.floats(0.2, 2.0))
def test_a_normal_linear_maps_exponents_are_log_abs_eig_dense_and_sparse(n, seed, spread):
    import scipy.sparse as sp

    from itermap.analysis import lyapunov_spectrum

    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    # distinct moduli, each pair at least `spread` apart in log: QR converges geometrically
    logs = -0.1 - spread * np.arange(n)
    W = (Q * np.exp(logs) * rng.choice([-1.0, 1.0], n)) @ Q.T
    for w in (W, sp.csr_matrix(W)):
        m = itermap.IterativeMap(w, activation="identity")
        r = lyapunov_spectrum(m, np.ones(n), 400, transient=200, rng=seed + 1)
        np.testing.assert_allclose(r.exponents, logs, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 4), P=st.integers(1, 2), Q=st.integers(1, 2),
       dt=st.floats(1e-3, 5.0), method=st.sampled_from(["bilinear", "zoh"]),
       seed=st.integers(0, 2**31))
def test_a_state_space_layers_kernel_and_probe_are_c_a_bar_k_b_bar(N, P, Q, dt, method, seed):
    import scipy.linalg

    from itermap.analysis import probe

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, N)) - 2.0 * np.eye(N)
    B, C = rng.standard_normal((N, P)), rng.standard_normal((Q, N))
    m = itermap.LinearStateSpace(A, B, C, dt=dt, method=method)
    if method == "bilinear":
        M = np.linalg.inv(np.eye(N) - dt * A / 2)
        Ab, Bb = M @ (np.eye(N) + dt * A / 2), M @ (dt * B)
    else:
        E = scipy.linalg.expm(np.block([[A, B], [np.zeros((P, N + P))]]) * dt)
        Ab, Bb = E[:N, :N], E[:N, N:]
    T = 6
    K = np.stack([C @ np.linalg.matrix_power(Ab, k) @ Bb for k in range(T)])
    scale = np.abs(K).max() + 1e-300
    assert np.abs(m.kernel(T) - K).max() <= 1e-12 * scale
    impulses = np.zeros((P, T, P))
    impulses[np.arange(P), 0, np.arange(P)] = 1.0
    states = probe(m, impulses)  # (P, T, N): Abar^t Bbar
    assert np.abs(np.einsum("qn,ptn->tqp", C, states) - K).max() <= 1e-12 * scale


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=7),
       act=st.sampled_from(["tanh", "relu", "identity"]), seed=st.integers(0, 2**31),
       skip=st.sampled_from([0.0, 0.5]))
def test_an_mlps_fir_length_and_measured_response_are_its_depth(sizes, act, seed, skip):
    from itermap.analysis import fir_length, lyapunov_spectrum

    m = itermap.mlp_continuum(sizes, activation=act, rng=seed, skip=skip)
    depth = len(sizes) - 1
    assert fir_length(m) == depth
    u = np.random.default_rng(seed).standard_normal(sizes[0])
    x = np.random.default_rng(seed + 1).standard_normal(m.dim)
    r = impulse_response(m, x, depth + 3, inputs=u)
    assert r.length is not None and r.length <= depth
    spec = lyapunov_spectrum(m, x, depth + 2, inputs=u, rng=seed)
    assert np.all(np.isneginf(spec.exponents)) and spec.n_collapsed == spec.exponents.size


_FRESH = """
import sys, json, numpy as np, itermap
from itermap.analysis import lyapunov_spectrum, impulse_response, memory_capacity
s = int(sys.argv[1])
m = itermap.random_rnn(5, gain=1.7, density=0.6, rng=s)
r = lyapunov_spectrum(m, np.full(5, 0.1), 200, rng=s)
d = itermap.mlp_continuum([1, 4, 1], recurrent=1.0, rng=s)
mc = memory_capacity(d, max_delay=3, steps=300, washout=20, rng=s)
print(json.dumps([m.block_matrix.to_dense().tolist(), r.exponents.tolist(), mc.r2.tolist()]))
"""


@pytest.mark.parametrize("seed", [3, 12345])
def test_an_int_rng_gives_the_same_numbers_in_a_fresh_process_and_as_a_generator(seed):
    import json
    import os
    import subprocess
    import sys

    from itermap.analysis import lyapunov_spectrum, memory_capacity

    env = dict(os.environ, PYTHONHASHSEED=str(seed + 1))
    out = subprocess.run([sys.executable, "-c", _FRESH, str(seed)], capture_output=True,
                         text=True, env=env, check=True, timeout=120)
    W, exps, r2 = json.loads(out.stdout)
    gen = np.random.default_rng
    m = itermap.random_rnn(5, gain=1.7, density=0.6, rng=gen(seed))
    assert m.block_matrix.to_dense().tolist() == W
    assert lyapunov_spectrum(m, np.full(5, 0.1), 200, rng=gen(seed)).exponents.tolist() == exps
    d = itermap.mlp_continuum([1, 4, 1], recurrent=1.0, rng=gen(seed))
    assert memory_capacity(d, max_delay=3, steps=300, washout=20,
                           rng=gen(seed)).r2.tolist() == r2


@pytest.mark.parametrize("sizes", [[1, 2, 4], [1, 3, 5], [2, 1, 3, 6]])
def test_an_mlp_widening_after_a_narrow_layer_has_every_exponent_minus_inf(sizes):
    # the product of `depth` Jacobians of an MLP is exactly 0, but a layer wider than the
    # one before it leaves the QR eps-sized R_jj instead of zeros: [1, 2, 4] gave a top
    # exponent of -35.7 (log eps) over 50 steps, -18.8 and -36.9 over 2
    from itermap.analysis import lyapunov_spectrum

    m = itermap.mlp_continuum(sizes, activation="tanh", rng=0)
    depth = len(sizes) - 1
    u = np.random.default_rng(0).standard_normal(sizes[0])
    x = np.random.default_rng(1).standard_normal(m.dim)
    for steps in (depth, depth + 2, 50):
        r = lyapunov_spectrum(m, x, steps, inputs=u, rng=0)
        assert np.all(np.isneginf(r.exponents)), (steps, r.exponents)
        assert r.n_collapsed == r.exponents.size
    # a run of fewer steps than the depth is not a full product: finite exponents remain
    short = lyapunov_spectrum(m, x, depth - 1, inputs=u, rng=0)
    assert np.isfinite(short.exponents[0])
    # resumed past the depth, the total run is the one of the total length
    more = lyapunov_spectrum(m, None, 1, inputs=u, continue_from=short)
    assert np.all(np.isneginf(more.exponents))
    assert np.all(np.isneginf(more.history[-1]))
    # the windows of finite_time_exponents as long as the depth or longer, likewise
    from itermap.analysis import finite_time_exponents

    fte = finite_time_exponents(m, x, depth, 4 * depth, inputs=u, rng=0)
    assert np.all(np.isneginf(fte.exponents)) and np.all(np.isneginf(fte.mean))
