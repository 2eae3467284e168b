"""Attention as an RNN and linear state-space layers (issue 28), against independent answers:
plain softmax over every prefix, torch's scaled dot-product attention, scipy's
cont2discrete, the HiPPO closed forms, direct matrix powers and Jaeger's bound."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import AttentionRNN, LinearStateSpace, attention_scan, deep_lssl
from itermap._maps._attention_rnn import combine
from itermap.analysis import impulse_response, lyapunov_spectrum, memory_capacity
from itermap.systems import hippo
from tests.conftest import to_np


def softmax_prefixes(s, V):
    """o_k = softmax(s[:k+1]) @ V[:k+1] for every k, one prefix at a time (float64)."""
    s, V = np.asarray(s, dtype=np.float64), np.asarray(V, dtype=np.float64)
    out = np.empty(s.shape + V.shape[-1:])
    for k in range(s.shape[0]):
        p = np.exp(s[:k + 1] - s[:k + 1].max(axis=0))
        p /= p.sum(axis=0)
        out[k] = np.einsum("t...,t...d->...d", p, V[:k + 1])
    return out


def attention(m, tokens):
    """Plain softmax attention of m's query over all tokens (T, d_in)."""
    K, V = tokens @ m.Wk.T, tokens @ m.Wv.T
    return softmax_prefixes(m.scale * K @ m.q, V)[-1]


# -- 1. attention as an RNN -----------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), B=st.integers(1, 3), d=st.integers(1, 5),
       scale=st.sampled_from([0.1, 1.0, 30.0]), seed=st.integers(0, 2 ** 16))
def test_the_scan_is_softmax_over_every_prefix(T, B, d, scale, seed):
    rng = np.random.default_rng(seed)
    s, V = scale * rng.normal(size=(T, B)), rng.normal(size=(T, B, d))
    np.testing.assert_allclose(attention_scan(s, V), softmax_prefixes(s, V), rtol=0,
                               atol=1e-12 * max(1.0, np.abs(V).max()))


def test_the_scan_in_float32_and_on_every_namespace(xp):
    rng = np.random.default_rng(1)
    s, V = 3 * rng.normal(size=(33, 2)), rng.normal(size=(33, 2, 4))
    for dtype, tol in ((xp.float64, 1e-12), (xp.float32, 1e-5)):
        out = attention_scan(xp.asarray(s, dtype=dtype), xp.asarray(V, dtype=dtype))
        assert out.dtype == dtype
        np.testing.assert_allclose(to_np(out), softmax_prefixes(s, V), atol=tol)


def test_huge_scores_give_finite_outputs_equal_to_softmax():
    rng = np.random.default_rng(2)
    s = rng.choice([-1e4, 1e4], size=(50, 3)) + rng.normal(size=(50, 3))
    V = rng.normal(size=(50, 3, 2))
    out = attention_scan(s, V)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, softmax_prefixes(s, V), atol=1e-12)
    for dtype in (np.float32, np.float64):    # and the map, from the empty prefix
        m = AttentionRNN(np.eye(2, dtype=dtype), np.eye(2, dtype=dtype),
                         np.array([1.0, 0.0], dtype=dtype), scale=1.0)
        tok = np.stack([s[:, 0], V[:, 0, 0]], axis=1).astype(dtype)
        traj = itermap.iterate(m, m.zeros(), 50, inputs=tok)
        o = m.readout(traj.states[1:])
        assert o.dtype == dtype and np.all(np.isfinite(o))
        want = softmax_prefixes(tok[:, 0].astype(float), tok.astype(float))
        if dtype == np.float64:
            np.testing.assert_allclose(o, want, rtol=1e-15, atol=1e-12)
        else:
            np.testing.assert_allclose(o, want, rtol=2e-6, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_the_map_after_T_steps_is_attention(seed):
    rng = np.random.default_rng(seed)
    d_in, d_k, d_v, T, B = 5, 4, 3, 1 + 7 * seed, 2
    m = AttentionRNN(rng.normal(size=(d_k, d_in)), rng.normal(size=(d_v, d_in)),
                     rng.normal(size=d_k))
    tokens = rng.normal(size=(T, B, d_in))
    final = itermap.iterate(m, m.zeros(B), T, inputs=tokens, keep="last").final
    for b in range(B):
        np.testing.assert_allclose(m.readout(final[b]), attention(m, tokens[:, b]), atol=1e-12)
    # every prefix at once, by the scan, from the map's own scores and values
    traj = itermap.iterate(m, m.zeros(B), T, inputs=tokens)
    np.testing.assert_allclose(m.readout(traj.states[1:]),
                               attention_scan(m.scores(tokens), m.values(tokens)), atol=1e-12)


def test_the_map_is_torch_scaled_dot_product_attention():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    m = AttentionRNN(rng.normal(size=(8, 6)), rng.normal(size=(3, 6)), rng.normal(size=8))
    tokens = rng.normal(size=(20, 6))
    q = torch.tensor(m.q[None, None, :])
    K = torch.tensor((tokens @ m.Wk.T)[None])
    V = torch.tensor((tokens @ m.Wv.T)[None])
    want = torch.nn.functional.scaled_dot_product_attention(q, K, V)[0, 0].numpy()
    final = itermap.iterate(m, m.zeros(), 20, inputs=tokens, keep="last").final
    np.testing.assert_allclose(m.readout(final), want, atol=1e-12)


summary = st.tuples(st.floats(-50, 50), st.floats(-3, 3), st.floats(0.01, 3))


@settings(max_examples=60, deadline=None)
@given(summary, summary, summary)
def test_the_combine_is_associative(x, y, z):
    def pack(t):
        return np.array(t[0]), np.array([t[1]]), np.array(t[2])

    x, y, z = pack(x), pack(y), pack(z)
    left, right = combine(combine(x, y), z), combine(x, combine(y, z))
    for a, b in zip(left, right):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)


def test_folding_the_combine_gives_the_scan():
    rng = np.random.default_rng(3)
    s, V = 5 * rng.normal(size=12), rng.normal(size=(12, 2))
    acc = (s[0], V[0], np.float64(1.0))
    outs = [acc[1] / acc[2]]
    for k in range(1, 12):
        acc = combine(acc, (s[k], V[k], np.float64(1.0)))
        outs.append(acc[1] / acc[2])
    np.testing.assert_allclose(np.array(outs), attention_scan(s, V), atol=1e-13)


@pytest.mark.parametrize("T", [1, 5, 17])
def test_constant_scores_give_the_running_mean_and_a_response_of_1_over_k(T):
    rng = np.random.default_rng(T)
    d_v, d_in = 3, 4
    m = AttentionRNN(rng.normal(size=(2, d_in)), rng.normal(size=(d_v, d_in)), np.zeros(2))
    tokens = rng.normal(size=(T, d_in))
    traj = itermap.iterate(m, m.zeros(), T, inputs=tokens)
    o = m.readout(traj.states[1:])
    np.testing.assert_allclose(o, np.cumsum(tokens @ m.Wv.T, 0) / np.arange(1, T + 1)[:, None],
                               atol=1e-13)
    # the response of o_k to v_j (j <= k) is exactly 1/k: o is linear in the tokens
    j, delta = T // 2, rng.normal(size=d_in)
    bumped = tokens.copy()
    bumped[j] += delta
    o2 = m.readout(itermap.iterate(m, m.zeros(), T, inputs=bumped).states[1:])
    k = np.arange(1, T + 1)[:, None]
    np.testing.assert_allclose(o2 - o, np.where(k > j, (m.Wv @ delta) / k, 0.0), atol=1e-13)
    # impulse_response: an impulse on a stays whole (a_k = a_j + sum v), on c too
    if T > 2:
        r = impulse_response(m, traj.states[j + 1], T - j - 2, inputs=tokens[j + 1:])
        np.testing.assert_allclose(r.norms[:, 0, 0], np.sqrt(d_v), rtol=1e-14)
        np.testing.assert_allclose(r.norms[:, 1, 1], 1.0, rtol=1e-14)
        assert r.length is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_map_keeps_the_protocol(dtype):
    rng = np.random.default_rng(0)
    m = AttentionRNN(*(rng.normal(size=s).astype(dtype) for s in ((3, 4), (2, 4), (3,))))
    assert m.dtype == dtype and m.dim == 4 and m.input_size == 4 and m.sizes == (2, 1, 1)
    x = rng.normal(size=(5, 4)).astype(dtype)
    assert m.step(x, rng.normal(size=4).astype(dtype)).dtype == dtype
    if dtype == np.float64:
        assert itermap.check_map(m, rng=1).passed
        assert itermap.check_map(m, x, u=rng.normal(size=(5, 4))).passed


def test_the_jacobian_where_the_maximum_switches_is_the_branch_that_keeps_it():
    m = AttentionRNN(np.eye(2), np.eye(2), np.array([1.0, 0.0]), scale=1.0)
    u = np.array([0.7, -1.3])                                # s = 0.7
    x = np.array([0.4, 2.0, 1.5, 0.7])                       # m = s: the tie
    J = m.jacobian(x, u)
    h = 1e-7
    e = np.array([0, 0, 0, h])
    up = (m.step(x + e, u) - m.step(x, u)) / h               # m > s: the old max is kept
    down = (m.step(x, u) - m.step(x - e, u)) / h             # m < s: the score takes over
    np.testing.assert_allclose(J[:, 3], up, atol=1e-6)
    np.testing.assert_allclose(down, [0.4, 2.0, 1.5, 0.0], atol=1e-6)   # (a, c, 0)
    np.testing.assert_allclose(J[:, 3], [-u[0], -u[1], -1.0, 1.0])      # (-beta v, -beta, 1)
    # the output is the same on both branches: its derivative does not jump
    o = m.readout
    np.testing.assert_allclose((o(m.step(x + e, u)) - o(m.step(x, u))) / h,
                               (o(m.step(x, u)) - o(m.step(x - e, u))) / h, atol=1e-6)


@pytest.mark.parametrize("make, name", [
    (lambda: AttentionRNN(np.ones((2, 3)), np.ones((2, 4)), np.ones(2)), "Wk"),
    (lambda: AttentionRNN(np.ones((2, 3)), np.ones((2, 3)), np.ones(3)), "q"),
    (lambda: AttentionRNN(np.ones((2, 3)), np.ones(3), np.ones(2)), "Wv"),
    (lambda: AttentionRNN(np.ones((2, 3)), np.ones((2, 3)), np.ones(2), scale=np.nan), "scale"),
    (lambda: AttentionRNN(np.ones((2, 3)), np.full((2, 3), np.nan), np.ones(2)), "Wv"),
    (lambda: attention_scan(np.ones(3), np.ones((4, 2))), "values"),
    (lambda: attention_scan(np.array([1.0, np.nan]), np.ones((2, 2))), "scores"),
    (lambda: attention_scan(np.ones(0), np.ones((0, 2))), "scores"),
    (lambda: attention_scan(np.ones(2) + 1j, np.ones((2, 2))), "scores"),
    (lambda: attention_scan("s", np.ones((2, 2))), "scores"),
])
def test_bad_attention_input_is_named(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


# -- 2. linear state-space layers -------------------------------------------------------------
def test_hippo_legs_4_exactly():
    A, B = hippo("legs", 4)
    r = np.sqrt([1.0, 3.0, 5.0, 7.0])
    want = np.array([[-1, 0, 0, 0],
                     [-r[1] * r[0], -2, 0, 0],
                     [-r[2] * r[0], -r[2] * r[1], -3, 0],
                     [-r[3] * r[0], -r[3] * r[1], -r[3] * r[2], -4]])
    np.testing.assert_array_equal(A, want)
    np.testing.assert_array_equal(B[:, 0], r)


def test_hippo_legt_and_lagt_by_hand():
    A, B = hippo("legt", 3)
    np.testing.assert_array_equal(A, -np.array([[1, 1, 1], [-3, 3, 3], [5, -5, 5]]))
    np.testing.assert_array_equal(B[:, 0], [1, -3, 5])
    A, B = hippo("lagt", 3)
    np.testing.assert_array_equal(A, -np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
    np.testing.assert_array_equal(B[:, 0], [1, 1, 1])
    np.testing.assert_allclose(np.linalg.eigvals(A), -1.0)


@pytest.mark.parametrize("N", [1, 4, 9, 16])
def test_legs_eigenvalues_and_its_normal_plus_low_rank_form(N):
    A, _ = hippo("legs", N)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(A).real), -np.arange(N, 0, -1.0))
    P = np.sqrt(np.arange(N) + 0.5)
    S = A + np.outer(P, P) + 0.5 * np.eye(N)
    np.testing.assert_allclose(S, -S.T, atol=1e-12)          # skew-symmetric


@pytest.mark.parametrize("kind", ["legs", "legt", "lagt"])
@pytest.mark.parametrize("method", ["bilinear", "zoh"])
@pytest.mark.parametrize("dt", [0.01, 0.3, 1.7])
def test_the_discretisation_is_scipy_cont2discrete(kind, method, dt):
    A, B = hippo(kind, 6)
    C, D = np.ones((1, 6)), np.zeros((1, 1))
    Ad, Bd, *_ = scipy.signal.cont2discrete((A, B, C, D), dt, method=method)
    m = LinearStateSpace(A, B, C, dt=dt, method=method)
    scale = max(1.0, np.abs(Ad).max())
    np.testing.assert_allclose(m.Abar, Ad, atol=1e-11 * scale)
    np.testing.assert_allclose(m.Bbar, Bd, atol=1e-11 * max(1.0, np.abs(Bd).max()))
    m32 = LinearStateSpace(A.astype(np.float32), B, C, dt=dt, method=method)
    assert m32.Abar.dtype == np.float32
    np.testing.assert_allclose(m32.Abar, Ad, atol=1e-6 * scale)


def test_the_bilinear_legs_exponents_are_the_closed_form():
    N, dt = 5, 0.1
    A, B = hippo("legs", N)
    m = LinearStateSpace(A, B, np.ones(N), dt=dt)
    n = np.arange(N)
    want = np.log(np.abs((1 - dt * (n + 1) / 2) / (1 + dt * (n + 1) / 2)))
    # seeded: the error depends on the random initial frame (0.5e-3 to 1.9e-3 over 30 seeds)
    spec = lyapunov_spectrum(m, np.full(N, 0.1), 4000, inputs=np.zeros(1), rng=0)
    # A is far from normal: the exponents converge as 1/T; their sum is exact at every T
    np.testing.assert_allclose(spec.exponents, want, atol=2e-3)
    np.testing.assert_allclose(np.sum(spec.exponents), want.sum(), atol=1e-11)


def _random_system(rng, N, P, Q, dtype):
    A = rng.normal(size=(N, N)) / np.sqrt(N) - 1.5 * np.eye(N)
    return (A.astype(dtype), rng.normal(size=(N, P)), rng.normal(size=(Q, N)),
            rng.normal(size=(Q, P)))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-11), (np.float32, 2e-4)])
@pytest.mark.parametrize("method", ["bilinear", "zoh"])
@pytest.mark.parametrize("shape", [(4, 1, 1), (6, 2, 3)])
def test_recurrence_kernel_and_convolution_agree(dtype, tol, method, shape):
    rng = np.random.default_rng(sum(shape))
    N, P, Q = shape
    A, B, C, D = _random_system(rng, N, P, Q, dtype)
    m = LinearStateSpace(A, B, C, D, dt=0.2, method=method)
    L, batch = 37, 3
    u = rng.normal(size=(L, batch, P)).astype(dtype)
    traj = itermap.iterate(m, m.zeros(batch), L, inputs=u)
    y_rec = m.readout(traj.states[1:], u)
    y_fft = m.convolve(u)
    assert y_fft.dtype == dtype and y_fft.shape == (L, batch, Q)
    scale = np.abs(y_rec).max()
    np.testing.assert_allclose(y_fft, y_rec, atol=tol * scale)
    np.testing.assert_allclose(m.convolve(u[:, 0]), y_rec[:, 0], atol=tol * scale)
    # the kernel against plain matrix powers
    Ab, Bb = m.Abar.astype(float), m.Bbar.astype(float)
    direct = np.stack([C @ np.linalg.matrix_power(Ab, j) @ Bb for j in range(L)])
    np.testing.assert_allclose(m.kernel(L), direct, atol=tol * np.abs(direct).max())
    assert itermap.check_map(LinearStateSpace(A.astype(float), B, C, D, dt=0.2,
                                              method=method), rng=0).passed


def test_convolution_on_every_namespace(xp):
    A, B = hippo("legs", 4)
    m = LinearStateSpace(xp.asarray(A), xp.asarray(B), xp.ones(4), dt=0.1)
    u = np.random.default_rng(0).normal(size=(20, 1))
    y = m.convolve(xp.asarray(u))
    want = LinearStateSpace(A, B, np.ones(4), dt=0.1)
    traj = itermap.iterate(want, want.zeros(), 20, inputs=u)
    np.testing.assert_allclose(to_np(y), want.readout(traj.states[1:], u), atol=1e-11)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("N", [4, 8])
def test_memory_capacity_approaches_N_and_never_exceeds_it(seed, N):
    # Jaeger (2002): a controllable N-state linear map with i.i.d. input holds N delays
    A, B = hippo("legs", N)
    m = LinearStateSpace(A, B, np.ones(N), dt=0.2)
    mc = memory_capacity(m, max_delay=5 * N, steps=20000, rng=seed)
    assert N - 0.25 < mc.capacity < N + 0.1
    # a system that only reaches 2 of its states holds 2
    Ablk = np.diag(-np.arange(1.0, N + 1))
    b = np.zeros(N)
    b[:2] = 1.0
    m2 = LinearStateSpace(Ablk, b, np.ones(N), dt=0.3)
    assert memory_capacity(m2, max_delay=5 * N, steps=20000, rng=seed).capacity < 2.1


def test_a_deep_lssl_is_its_layers_composed_with_one_step_of_delay_each():
    rng = np.random.default_rng(4)
    A, B = hippo("legs", 5)
    l1 = LinearStateSpace(A, B, rng.normal(size=(2, 5)), rng.normal(size=(2, 1)), dt=0.2)
    l2 = LinearStateSpace(A, rng.normal(size=(5, 2)), rng.normal(size=5), 0.3 * np.ones((1, 2)),
                          dt=0.05, method="zoh")
    net = deep_lssl([l1, l2], activation="tanh")
    T = 30
    u = rng.normal(size=(T, 1))
    traj = itermap.iterate(net, net.zeros(), T + 2, inputs=np.concatenate([u, np.zeros((2, 1))]))
    want = l2.convolve(np.tanh(l1.convolve(u)))
    np.testing.assert_allclose(net.readout(traj.states[2:T + 2]), want, atol=1e-12)
    # the pattern: an MLP's sub-diagonal, plus linear recurrent blocks on the diagonal
    pat = net.block_matrix.block_pattern()
    assert pat[1, 1] and pat[3, 3] and not pat[2, 2] and not pat[4, 4]
    assert not np.triu(pat, 1).any()


@pytest.mark.parametrize("make, name", [
    (lambda: LinearStateSpace(np.ones((2, 3)), np.ones(2), np.ones(2), dt=0.1), "A"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.0), "dt"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=np.inf), "dt"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt="a"), "dt"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1, method="euler"),
     "method"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(3), np.ones(2), dt=0.1), "B"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(3), dt=0.1), "C"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), np.ones((2, 2)), dt=0.1), "D"),
    (lambda: LinearStateSpace(np.eye(2), np.ones(2), np.ones(2), dt=2.0), "dt"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1).kernel(0), "L"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1).convolve(
        np.ones((3, 2))), "u"),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1).convolve(
        np.full((3, 1), np.nan)), "u"),
    (lambda: hippo("legx", 3), "kind"),
    (lambda: hippo("legs", 0), "N"),
    (lambda: deep_lssl([]), "layers"),
    (lambda: deep_lssl([LinearStateSpace(-np.eye(2), np.ones(2), np.ones((2, 2)), dt=0.1)] * 2
                       + [LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1)]),
     "layers"),
    (lambda: deep_lssl([LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1)],
                       activation="nope"), "activation"),
])
def test_bad_state_space_input_is_named(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


# -- both maps: saving, moving ----------------------------------------------------------------
def test_the_new_maps_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    A, B = hippo("legt", 3)
    maps = [AttentionRNN(rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), rng.normal(size=2),
                         scale=0.7),
            LinearStateSpace(A.astype(np.float32), B, np.ones(3), np.ones((1, 1)), dt=0.3,
                             method="zoh")]
    for i, m in enumerate(maps):
        path = tmp_path / f"m{i}.npz"
        itermap.save(m, path)
        back = itermap.load(path)
        assert type(back) is type(m) and back.dtype == m.dtype
        x, u = rng.normal(size=(4, m.dim)), rng.normal(size=(4, m.input_size))
        np.testing.assert_array_equal(back.step(x.astype(m.dtype), u), m.step(
            x.astype(m.dtype), u))


# -- the four families side by side -------------------------------------------------------------
def test_the_comparison_against_what_each_family_must_show():
    from itermap.analysis import compare_sequence_models, sequence_models

    maps = sequence_models(12, rng=3)
    # attention with constant scores: the impulse on a stays whole, exactly
    maps["attention"] = AttentionRNN(np.ones((2, 1)), np.ones((10, 1)), np.zeros(2))
    r = compare_sequence_models(maps, steps=12, max_delay=6, mc_steps=2000,
                                lyapunov_steps=200, k=3, rng=0)
    assert r.names == ["mlp", "rnn", "lssl", "attention"] and r.dims == [13, 13, 15, 12]
    i = {n: j for j, n in enumerate(r.names)}
    # the MLP of depth 2: an impulse in layer 1 reaches layer 2, then nothing (exactly)
    np.testing.assert_array_equal(r.impulse[i["mlp"], 2:], 0.0)
    assert r.impulse[i["mlp"], 1] > 0 and np.all(np.isneginf(r.exponents[i["mlp"]]))
    assert 1.9 < r.capacity[i["mlp"]] < 2.1 and np.all(r.r2[i["mlp"], 2:] < 0.02)
    np.testing.assert_allclose(r.impulse[i["attention"]], 1.0, rtol=1e-14)
    # the RNN and the LSSL forget gradually: positive and falling, never exactly zero
    for name in ("rnn", "lssl"):
        row = r.impulse[i[name]]
        assert np.all(row > 0) and row[-1] < row[0]
        assert np.all(r.exponents[i[name]] < 0)
    # the LSSL's first exponent is the slowest LegS mode of its slower layer (dt = 0.02):
    # the driven tanh between layers does not change a linear block's exponents
    want = np.log((1 - 0.02 / 2) / (1 + 0.02 / 2))
    assert r.exponents[i["lssl"], 0] == pytest.approx(want, abs=0.01)


def test_the_comparison_saves_plots_and_reports(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import compare_sequence_models, plots
    from itermap.analysis._report import run_report

    r = compare_sequence_models(units=6, steps=5, max_delay=3, mc_steps=400,
                                lyapunov_steps=30, rng=1)
    back = itermap.load(itermap.save(r, tmp_path / "cmp.npz"))
    np.testing.assert_array_equal(back.r2, r.r2)
    np.testing.assert_array_equal(back.exponents, r.exponents)
    fig, axes = plt.subplots(1, 3)
    for ax, panel in zip(axes, ("impulse", "memory", "spectrum")):
        assert plots.sequence_comparison(r, panel, ax=ax) is ax
        assert len(ax.get_legend().get_texts()) == 4
    plt.close(fig)
    spec = {"networks": {"r": {"kind": "random_rnn", "n": 3, "gain": 0.5}},
            "analyses": [{"kind": "sequence_models", "units": 6, "steps": 5, "max_delay": 3,
                          "mc_steps": 400, "lyapunov_steps": 30}]}
    doc = run_report(spec, tmp_path / "rep", progress=False)
    nums = doc["analyses"][0]["numbers"]
    assert nums["names"] == ["mlp", "rnn", "lssl", "attention"]
    assert 1.9 < nums["capacity"][0] < 2.1           # an MLP of depth 2: [1, 3, 3]
    assert len(list((tmp_path / "rep" / "figures").glob("*sequence*.png"))) == 3


def test_the_new_maps_move_between_backends():
    rng = np.random.default_rng(2)
    att = AttentionRNN(rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), rng.normal(size=2))
    A, B = hippo("lagt", 3)
    ssm = LinearStateSpace(A, B, np.ones(3), dt=0.2, method="zoh")
    for m in (att, ssm):
        back = m.to("numpy")
        x, u = rng.normal(size=(2, m.dim)), rng.normal(size=(2, m.input_size))
        np.testing.assert_array_equal(back.step(x, u), m.step(x, u))
        assert back.backend == "numpy"
