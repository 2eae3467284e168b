"""Analyses outside fixed points on every map kind, against independent references.

Each test here failed before the fix it names: an analysis that rebuilt or rescaled a
network as if it were a plain ``x -> f(W x + b)`` and lost its leak or function blocks.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import block_functions as bf
from itermap.analysis import canonical_permutation, gain_family, permute_units


def _function_map(rng, leak=None, dtype=np.float64):
    """Blocks (3, 3, 4): block 1 <- FeedForward(block 0) + W; block 2 a plain tanh block."""
    ff = bf.FeedForward(rng.normal(size=(5, 3)).astype(dtype), None,
                        rng.normal(size=(3, 5)).astype(dtype), None, seq_len=1)
    W = (rng.normal(size=(10, 10)) * 0.5).astype(dtype)
    W[:3, 3:] = 0.0  # block 0 reads only itself
    return itermap.IterativeMap(W, rng.normal(size=10).astype(dtype), "tanh",
                                sizes=[3, 3, 4], functions={(1, 0): ff}, leak=leak)


# -- permute_units: the permuted map is the same dynamical system -------------------------
@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**16), leak=st.sampled_from([None, 0.3, 0.7]),
       sparse=st.booleans())
def test_permute_units_keeps_the_leak(seed, leak, sparse):
    rng = np.random.default_rng(seed)
    n = 12
    m = itermap.random_rnn(n, gain=1.5, density=0.1 if sparse else 1.0, rng=rng,
                           leak=1.0 if leak is None else leak)
    p = rng.permutation(n)
    x = rng.normal(size=(3, n))
    out = permute_units(m, p)
    # new unit k is old unit p[k]: stepping the permuted state permutes the step
    np.testing.assert_allclose(out.step(x[:, p]), m.step(x)[:, p], rtol=0, atol=1e-13)
    assert out.leak == m.leak


def test_permute_units_keeps_function_blocks():
    rng = np.random.default_rng(1)
    m = _function_map(rng, leak=[1.0, 0.4, 0.6])
    p = np.concatenate([np.arange(6), 6 + rng.permutation(4)])
    x = rng.normal(size=(2, 10))
    out = permute_units(m, p)
    np.testing.assert_allclose(out.step(x[:, p]), m.step(x)[:, p], rtol=0, atol=1e-13)
    assert set(out.functions) == {(1, 0)}
    q = np.concatenate([[1, 0, 2], np.arange(3, 10)])   # reorders the function's input
    with pytest.raises(ValueError, match="perm"):
        permute_units(m, q)


def test_canonical_permutation_leaves_function_blocks_in_order():
    m = _function_map(np.random.default_rng(2))
    c = canonical_permutation(m, blocks=[2])
    np.testing.assert_array_equal(c[:6], np.arange(6))
    x = np.random.default_rng(3).normal(size=10)
    np.testing.assert_allclose(permute_units(m, c).step(x[c]), m.step(x)[c], atol=1e-13)
    np.testing.assert_array_equal(canonical_permutation(m)[:6], np.arange(6))
    with pytest.raises(ValueError, match="blocks"):
        canonical_permutation(m, blocks=[0])


# -- gain_family: the family at gain g is x -> f(g W x + b), with the map's own f ---------
_SIN = itermap.Activation("tanh", lambda z, xp: xp.sin(z), lambda z, xp: xp.cos(z))  # misnamed


@pytest.mark.parametrize("activation", [_SIN, "relu", "sin"])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_gain_family_is_f_of_g_w_x_plus_b(activation, density):
    rng = np.random.default_rng(4)
    n = 9
    W = rng.normal(size=(n, n)) * (rng.random((n, n)) < density)
    b = rng.normal(size=n)
    m = itermap.IterativeMap(W, b, activation)
    f = np.sin if activation in (_SIN, "sin") else (lambda z: np.maximum(z, 0.0))
    x = rng.normal(size=(2, n))
    make = gain_family(m)
    for g in (0.5, 2.0):
        np.testing.assert_allclose(make(g).step(x), f(g * x @ W.T + b), atol=1e-13)
    np.testing.assert_allclose(make(np.array([0.5, 2.0])).step(x),
                               f(np.array([[0.5], [2.0]]) * (x @ W.T) + b), atol=1e-13)


def test_gain_family_refuses_function_blocks():
    m = _function_map(np.random.default_rng(5))
    with pytest.raises(ValueError, match="map"):
        gain_family(m)


# -- train: the trained map is the same kind of map ---------------------------------------
@pytest.mark.parametrize("leak", [None, [1.0, 0.5, 1.0]])
def test_train_keeps_function_blocks(leak):
    rng = np.random.default_rng(6)
    ff = bf.FeedForward(rng.normal(size=(5, 3)), None, rng.normal(size=(3, 5)), None, seq_len=1)
    W = np.zeros((8, 8))
    W[3:6, :3], W[3:6, 3:6], W[6:, 3:6] = (rng.normal(size=(3, 3)), rng.normal(size=(3, 3)),
                                           rng.normal(size=(2, 3)))
    m = itermap.IterativeMap(W, None, ["identity", "tanh", "identity"], sizes=[3, 3, 2],
                             input_block=0, functions={(1, 0): ff}, leak=leak)
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, 16)
    # a step too small to move any weight: the trained map is the map
    out, _ = itermap.train(m, X, y, steps=2, epochs=1, lr=1e-300, rng=0, progress=False)
    assert set(out.functions) == {(1, 0)} and out.leak == m.leak
    x, u = rng.normal(size=(4, 8)), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(out.step(x, u), m.step(x, u))


# -- iterate(method="newton") on a torus: the states iterate gives, wrapped -----------------
@settings(deadline=None, max_examples=10)
@given(k=st.floats(0.1, 0.9), seed=st.integers(0, 2**16), keep=st.sampled_from(["all", "last"]))
def test_newton_iterate_wraps_on_a_torus(k, seed, keep):
    m = itermap.systems.standard_map(k)
    x0 = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(3, 2))
    x, plain = x0, [x0]
    for _ in range(25):   # a plain loop: the smooth step, then both coordinates mod 2 pi
        x = np.mod(m.step(x), 2 * np.pi)
        plain.append(x)
    out = np.asarray(itermap.iterate(m, x0, 25, method="newton", keep=keep).states)
    want = np.stack(plain) if keep == "all" else plain[-1][None]
    assert np.all((out[1:] >= 0) & (out[1:] < 2 * np.pi))
    np.testing.assert_allclose(out, want, atol=1e-8)


def test_orbit_diagram_wraps_on_a_torus():
    from itermap.analysis import orbit_diagram

    ks, x0 = [0.5, 2.0], np.array([1.0, 0.5])
    od = orbit_diagram(itermap.systems.standard_map, ks, x0, transient=20, keep=6)
    for row, k in zip(od.states, ks):
        m, x, want = itermap.systems.standard_map(k), x0, []
        for t in range(26):   # a plain loop: the smooth step, then mod 2 pi
            x = np.mod(m.step(x), 2 * np.pi)
            if t >= 20:
                want.append(x)
        np.testing.assert_allclose(row, np.stack(want), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lyapunov_state_wraps_on_a_torus_on_every_path(dtype):
    from itermap.analysis import lyapunov_spectrum

    m = itermap.systems.standard_map(2.0)
    x0 = np.array([[1.0, 0.5], [4.0, 2.0]], dtype=dtype)
    res = lyapunov_spectrum(m, x0, 10, rng=0)   # float32: the general stepper
    x = x0.astype(float)
    for _ in range(10):
        x = np.mod(m.step(x), 2 * np.pi)
    state = np.asarray(res.state, dtype=float)
    assert np.all((state >= 0) & (state < 2 * np.pi))
    np.testing.assert_allclose(state, x, atol=1e-2 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(res.exponents.sum(), 0.0, atol=1e-4)  # area-preserving


# -- impulse_response of maps driven without an input block (forced_size 0) ---------------
@pytest.mark.parametrize("method", ["linear", "nonlinear"])
def test_impulse_response_of_a_state_space_layer_is_powers_of_a_bar(method):
    rng = np.random.default_rng(7)
    N, dt = 4, 0.1
    A = rng.normal(size=(N, N))
    A = A - A.T - np.eye(N)
    m = itermap.LinearStateSpace(A, rng.normal(size=(N, 2)), rng.normal(size=(1, N)), dt=dt)
    r = itermap.analysis.impulse_response(m, rng.normal(size=N), 8, inputs=rng.normal(size=2),
                                          method=method)
    # bilinear (Tustin) discretisation, written here: (I - dt/2 A)^-1 (I + dt/2 A)
    Ab = np.linalg.solve(np.eye(N) - dt / 2 * A, np.eye(N) + dt / 2 * A)
    want = [np.linalg.norm(np.linalg.matrix_power(Ab, k)) for k in range(9)]
    np.testing.assert_allclose(r.norms[:, 0, 0], want, rtol=1e-6 if method == "nonlinear"
                               else 1e-12)


@pytest.mark.parametrize("cls, gates", [(itermap.GRUMap, 3), (itermap.LSTMMap, 4),
                                        (itermap.ElmanRNNMap, 1)])
def test_impulse_response_nonlinear_agrees_with_tangents_on_gated_maps(cls, gates):
    rng = np.random.default_rng(8)
    m = cls(rng.normal(size=(gates * 3, 2)), rng.normal(size=(gates * 3, 3)))
    x, u = rng.normal(size=m.dim) * 0.3, rng.normal(size=2)
    a = itermap.analysis.impulse_response(m, x, 6, inputs=u)
    b = itermap.analysis.impulse_response(m, x, 6, inputs=u, method="nonlinear", eps=1e-7)
    np.testing.assert_allclose(b.norms, a.norms, rtol=1e-4, atol=1e-9)


# -- the report on saved maps of other kinds ----------------------------------------------
def test_report_on_saved_driven_and_leaky_maps(tmp_path):
    from itermap.analysis._report import run_report

    rng = np.random.default_rng(9)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    lam = np.array([0.9, 0.5, 0.1, -0.3, -0.8])
    res = itermap.ReservoirMap(Q @ np.diag(lam) @ Q.T, rng.normal(size=(5, 2)),
                               activation="identity", leak=0.3,
                               readout_weights=rng.normal(size=(5, 1)))
    gru = itermap.GRUMap(rng.normal(size=(9, 2)), rng.normal(size=(9, 3)))
    flat = itermap.IterativeMap(np.zeros((3, 3)), activation="identity", leak=0.4)
    for name, m in (("res", res), ("gru", gru), ("flat", flat)):
        itermap.save(m, tmp_path / f"{name}.npz")
    nets = "".join(f'[networks.{n}]\nkind = "saved"\npath = "{tmp_path / n}.npz"\n'
                   for n in ("res", "gru", "flat"))
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'title = "kinds"\nseed = 1\n' + nets
        + '[[analyses]]\nkind = "lyapunov"\nnetwork = "res"\nsteps = 400\nstarts = 1\n'
        + '[[analyses]]\nkind = "trajectory"\nnetwork = "gru"\nsteps = 20\ntransient = 0\n'
        + '[[analyses]]\nkind = "finite_time"\nnetwork = "flat"\nsteps = 200\nk = 3\n')
    doc = run_report(spec, tmp_path / "out", progress=False)
    lyap, traj, ftle = (a["numbers"] for a in doc["analyses"])
    # the reservoir's 5 free directions (of 7): log|(1 - a) + a lambda(W)|, a linear map
    np.testing.assert_allclose(lyap["exponents"], np.log(np.abs(0.7 + 0.3 * lam)), atol=1e-3)
    assert traj["steps"] == 20
    np.testing.assert_allclose(ftle["mean"], [np.log(0.6)] * 3, atol=1e-12)  # x -> 0.6 x


def test_finite_time_histogram_of_a_constant_exponent():
    import matplotlib.pyplot as plt

    # a leaky direction's exponent is the same in every window up to rounding (a few ulps
    # apart, as a leaky tanh network of two blocks gave): numpy cannot cut 50 bins there
    c = np.log(0.6)
    ex = np.stack([c + np.spacing(c) * (np.arange(40) % 3), np.linspace(-1.0, -0.5, 40)], 1)
    fig, (a, b) = plt.subplots(1, 2)
    ax = itermap.analysis.plots.finite_time_histogram({"exponents": ex, "window": 10}, ax=a)
    assert ax is a and len(ax.patches) == 2
    xs = ax.patches[0].get_path().vertices[:, 0]
    assert xs.min() < c < xs.max() and xs.max() - xs.min() < 0.01
    plt.close(fig)


# -- save / load: every map kind round-trips bit for bit ----------------------------------
def _layer(rng, T=2, d=4, dtype=np.float64):
    def w(*shape):
        return (rng.normal(size=shape) * 0.5).astype(dtype)
    return bf.transformer_layer(
        bf.SelfAttention(w(3 * d, d), w(3 * d), w(d, d), None, num_heads=2, seq_len=T),
        bf.FeedForward(w(8, d), None, w(d, 8), None, seq_len=T),
        bf.LayerNorm(np.ones(d, dtype), np.zeros(d, dtype), seq_len=T),
        bf.LayerNorm(np.ones(d, dtype), np.zeros(d, dtype), seq_len=T), norm_first=True)


def _map_kinds():
    rng = np.random.default_rng(10)
    A = rng.normal(size=(4, 4))
    return {
        "dense_leak": itermap.random_rnn(6, gain=1.5, rng=1, leak=0.3),
        "sparse_leak_f32": itermap.random_rnn(40, density=0.05, rng=1, leak=0.3,
                                              dtype=np.float32),
        "bias_blocks": itermap.IterativeMap(rng.normal(size=(7, 7)), rng.normal(size=7),
                                            ["tanh", "relu"], sizes=[3, 4], leak=[0.3, 0.8]),
        "functions_leak": _function_map(rng, leak=[1.0, 0.5, 0.3]),
        "functions_f32": _function_map(rng, dtype=np.float32),
        "from_rnn": itermap.IterativeMap.from_rnn(rng.normal(size=(5, 5)), rng.normal(size=(5, 2)),
                                                  leak=0.4),
        "reservoir": itermap.ReservoirMap(rng.normal(size=(5, 5)), rng.normal(size=(5, 2)),
                                          leak=0.3, readout_weights=rng.normal(size=(5, 1))),
        "gru": itermap.GRUMap(rng.normal(size=(9, 2)), rng.normal(size=(9, 3)),
                              rng.normal(size=9), rng.normal(size=9)),
        "lstm": itermap.LSTMMap(rng.normal(size=(12, 2)), rng.normal(size=(12, 3))),
        "transformer": itermap.transformer_map([_layer(rng), _layer(rng)]),
        "looped": itermap.looped_transformer_map(_layer(rng)),
        "looped_f32": itermap.looped_transformer_map(_layer(rng, dtype=np.float32)),
        "attention": itermap.AttentionRNN(rng.normal(size=(2, 3)), rng.normal(size=(4, 3)),
                                          rng.normal(size=2)),
        "lssl": itermap.LinearStateSpace(A - A.T, rng.normal(size=(4, 1)),
                                         rng.normal(size=(1, 4)), dt=0.1, method="zoh"),
        "henon": itermap.systems.henon(1.2, 0.25),
        "standard": itermap.systems.standard_map(0.9),
        "linear": itermap.systems.linear(A),
    }


@pytest.mark.parametrize("name", sorted(_map_kinds()))
def test_save_load_round_trips_every_map_kind(name, tmp_path):
    m = _map_kinds()[name]
    itermap.save(m, tmp_path / "m.npz")
    back = itermap.load(tmp_path / "m.npz")
    assert type(back) is type(m) and back.dim == m.dim
    rng = np.random.default_rng(11)
    dtype = m.dtype or np.float64
    x = rng.uniform(0.1, 0.9, size=(3, m.dim)).astype(dtype)
    args = (x, rng.normal(size=(3, m.input_size)).astype(dtype)) if m.input_size else (x,)
    np.testing.assert_array_equal(back.step(*args), m.step(*args))
    assert back.step(*args).dtype == m.step(*args).dtype
    for attr in ("leak", "functions", "periods"):
        if hasattr(m, attr):
            assert (set(getattr(back, attr)) if attr == "functions"
                    else getattr(back, attr)) == (set(getattr(m, attr)) if attr == "functions"
                                                  else getattr(m, attr))


# -- probe: maps driven without an input block ------------------------------------------
def test_probe_of_a_state_space_layer_gives_its_markov_parameters():
    from itermap.analysis import probe

    rng = np.random.default_rng(12)
    N, dt = 4, 0.2
    A = rng.normal(size=(N, N))
    A = A - A.T - 0.5 * np.eye(N)
    B = rng.normal(size=(N, 2))
    m = itermap.LinearStateSpace(A, B, rng.normal(size=(1, N)), dt=dt)
    T = 6
    impulses = np.zeros((2, T, 2))
    impulses[0, 0, 0] = impulses[1, 0, 1] = 1.0
    out = probe(m, impulses)
    # bilinear discretisation written here: Abar = (I - dt/2 A)^-1 (I + dt/2 A),
    # Bbar = (I - dt/2 A)^-1 dt B; the state after step t + 1 is Abar^t Bbar e_p
    inv = np.linalg.inv(np.eye(N) - dt / 2 * A)
    Ab, Bb = inv @ (np.eye(N) + dt / 2 * A), inv @ (dt * B)
    for t in range(T):
        np.testing.assert_allclose(out[:, t].T, np.linalg.matrix_power(Ab, t) @ Bb, atol=1e-12)
    with pytest.raises(ValueError, match="map"):
        probe(itermap.systems.henon(), np.zeros((3, 1)))


# -- Lyapunov spectra of leaky linear networks: log|(1 - a) + a lambda(W)| ---------------
@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 9), leak=st.floats(0.05, 1.0),
       sparse=st.booleans(), driven=st.booleans(), f32=st.booleans())
def test_leaky_linear_spectrum_is_closed_form(seed, n, leak, sparse, driven, f32):
    import scipy.sparse as sp

    from itermap.analysis import lyapunov_spectrum

    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = rng.uniform(-0.95, 0.95, size=n)
    W = Q @ np.diag(lam) @ Q.T                     # symmetric: the QR exponents are exact
    dtype = np.float32 if f32 else np.float64
    Wm = (sp.csr_matrix(W) if sparse else W).astype(dtype)
    if driven:
        m = itermap.IterativeMap.from_rnn(Wm, rng.normal(size=(n, 2)).astype(dtype),
                                          activation="identity", leak=leak)
        inputs = rng.normal(size=(300, 2)).astype(dtype)
    else:
        m, inputs = itermap.IterativeMap(Wm, activation="identity", leak=leak), None
    res = lyapunov_spectrum(m, rng.normal(size=m.dim).astype(dtype), 250, transient=50,
                            inputs=inputs, rng=seed + 1)  # not the draws of Q
    want = np.sort(np.log(np.abs((1 - leak) + leak * lam)))[::-1]
    # the frame's orientation error decays as the gaps between exponents: compare the
    # well-separated ones, after 250 steps, to float32 or float64 rounding
    gaps = np.minimum(np.abs(np.diff(want, prepend=np.inf)), np.abs(np.diff(want, append=-np.inf)))
    ok = gaps > 0.1
    np.testing.assert_allclose(res.exponents[ok], want[ok], atol=5e-3 if f32 else 1e-3)
    np.testing.assert_allclose(res.exponents.sum(), want.sum(), atol=1e-3 if f32 else 1e-9)


# -- bad inputs name the parameter ----------------------------------------------------------
def test_input_errors_name_inputs():
    from itermap.analysis import finite_time_exponents, lyapunov_spectrum

    rng = np.random.default_rng(13)
    gru = itermap.GRUMap(rng.normal(size=(9, 2)), rng.normal(size=(9, 3)))
    x0 = np.zeros((2, gru.dim))
    # finite_time_exponents takes a constant input only: a whole sequence is refused as such
    with pytest.raises(ValueError, match="inputs must be constant"):
        finite_time_exponents(gru, x0, 5, 50, transient=10, inputs=np.zeros((60, 2, 2)))
    for bad in (np.zeros((7, 2, 2)), np.zeros((60, 3, 2)), np.zeros((3, 2))):
        with pytest.raises(ValueError, match="^inputs"):
            lyapunov_spectrum(gru, x0, 50, transient=10, inputs=bad)


# -- prune and add_blocks keep what is not a weight matrix --------------------------------
def test_prune_and_add_blocks_keep_leak_and_function_blocks():
    rng = np.random.default_rng(14)
    m = _function_map(rng, leak=[1.0, 0.5, 0.3])
    x = rng.normal(size=(3, 10))
    # pruning nothing, or adding an empty block, changes no step
    for out in (itermap.prune(m, fraction=0.0), itermap.add_blocks(m, {(0, 2): 0.0}, rng=0)):
        assert out.leak == m.leak and set(out.functions) == {(1, 0)}
        np.testing.assert_allclose(out.step(x), m.step(x), rtol=0, atol=1e-15)
    # pruning everything leaves f(g(x_0) + b) with the leak: written here for block 1
    bare = itermap.prune(m, fraction=1.0)
    g = m.functions[(1, 0)]
    z1 = np.stack([g(r) for r in x[:, :3]]) + m.bias[3:6]
    want = 0.5 * x[:, 3:6] + 0.5 * np.tanh(z1)
    np.testing.assert_allclose(bare.step(x)[:, 3:6], want, atol=1e-14)


def test_effective_spectral_radius_refuses_function_blocks():
    from itermap.analysis import effective_spectral_radius

    m = _function_map(np.random.default_rng(15), leak=[1.0, 0.5, 0.3])
    with pytest.raises(ValueError, match="map"):
        effective_spectral_radius(m)
    # without the function block the same weights give max|eig(diag(1 - a) + diag(a) W)|
    plain = itermap.IterativeMap(m.block_matrix, m.bias, "tanh", leak=m.leak)
    a = np.repeat(m.leak, m.sizes)
    W = m.block_matrix.to_dense()
    want = np.abs(np.linalg.eigvals(np.diag(1 - a) + a[:, None] * W)).max()
    assert effective_spectral_radius(plain) == pytest.approx(want, rel=1e-12)


# -- structure: FIR length, impulse response and the graph against matrix powers ----------
@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 12), kind=st.sampled_from(
    ["dense", "sparse", "driven", "float32"]))
def test_fir_length_is_the_nilpotency_index(seed, n, kind):
    import scipy.sparse as sp

    from itermap.analysis import fir_length, impulse_response, sparsity_graph

    rng = np.random.default_rng(seed)
    M = np.tril(rng.normal(size=(n, n)), -1) * (rng.random((n, n)) < rng.uniform(0.2, 0.9))
    p = rng.permutation(n)
    M = M[p][:, p]                                   # a DAG in a scrambled unit order
    if kind == "driven" and n >= 4:
        m = itermap.IterativeMap(M, None, "tanh", sizes=[2, n - 2], input_block=0)
        free = np.arange(2, n)
    else:
        W = sp.csr_matrix(M) if kind == "sparse" else M.astype(
            np.float32 if kind == "float32" else np.float64)
        m, free = itermap.IterativeMap(W, rng.normal(size=n), "tanh"), np.arange(n)
    A = (M[np.ix_(free, free)] != 0).astype(float)
    P, index = np.eye(free.size), 0
    while P.any():                                   # the smallest L with A^L = 0
        P, index = (P @ A > 0).astype(float), index + 1
    assert fir_length(m) == index
    x = rng.normal(size=m.dim).astype(m.dtype)
    u = rng.normal(size=2) if m.input_block is not None else None
    r = impulse_response(m, x, n + 2, inputs=u, blocks=[len(m.sizes) - 1])
    assert r.length == index                        # generic weights: no cancellation
    G = sparsity_graph(m)
    assert sorted(G.edges()) == sorted(zip(*np.nonzero(M.T)))
    leaky = itermap.IterativeMap(M, leak=0.5)        # a leak keeps part of every state
    assert fir_length(leaky) is None
    loops = {(a, b): d for a, b, d in sparsity_graph(leaky).edges(data="leak") if a == b}
    assert loops == {(i, i): 0.5 for i in range(n)}
