"""Defects found in round 16, each with the test that failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import itermap
from itermap.analysis import (
    continuation,
    find_fixed_points,
    gain_family,
    lyapunov_scan,
    sample_states,
)
from itermap.analysis.fixed_points import _newton_krylov as nk
from itermap.analysis.fixed_points._common import _Power
from itermap.block_functions import FeedForward
from tests.test_newton_krylov_kinds import _central_differences


def _sparse(n, gain, density, seed):
    g = np.random.default_rng(seed)
    W = sp.random(n, n, density=density, random_state=g, data_rvs=g.standard_normal,
                  format="csr")
    return (W * (gain / np.sqrt(n * density))).tocsr()


def _function_block_network(n=40, leak=None, driven=False):
    h = n // 2
    rng = np.random.default_rng(6)
    F1, F2 = rng.normal(size=(6, h)) * 0.3, rng.normal(size=(h, 6)) * 0.3
    ff = FeedForward(F1, None, F2, None, seq_len=1, activation="tanh")
    W0, W1 = _sparse(h, 1.4, 0.15, 7), _sparse(h, 1.4, 0.15, 8)
    m = itermap.IterativeMap(itermap.BlockMatrix([h, h], {(0, 0): W0, (1, 1): W1}),
                             functions={(1, 0): ff}, leak=leak)
    return m, (W0, W1, F1, F2)


# -- 1. Newton-Krylov on function-block networks: a preconditioner through the protocol --
@pytest.mark.parametrize("leak", [None, 0.4])
def test_a_function_block_network_gives_its_jacobian_as_a_sparse_matrix(leak):
    m, (W0, W1, F1, F2) = _function_block_network(leak=leak)
    a = 1.0 if leak is None else leak

    def plain(x):       # the map written from its weights
        top = np.tanh(W0 @ x[:20])
        bottom = np.tanh(W1 @ x[20:] + F2 @ np.tanh(F1 @ x[:20]))
        return (1.0 - a) * x + a * np.concatenate([top, bottom])

    x = np.random.default_rng(1).normal(0.0, 0.6, 40)
    J = m.approximate_jacobian(x)
    assert sp.issparse(J)
    np.testing.assert_allclose(J.toarray(), _central_differences(plain, x), atol=1e-7)
    assert m.sparse_jacobian(x) is None            # the exact-Jacobian member is unchanged
    assert m.approximate_jacobian(x, max_nnz=10) is None


def test_the_function_blocks_jacobian_is_built_in_chunks_of_directions(monkeypatch):
    from itermap._maps import _network_grad

    m, (W0, W1, F1, F2) = _function_block_network()
    x = np.random.default_rng(2).normal(0.0, 0.6, 40)
    monkeypatch.setattr(_network_grad, "_JAC_CHUNK", 3)      # 20 inputs: 7 chunks
    J = m.approximate_jacobian(x)
    # the function block's rows: diag(1 - tanh^2) (W1 | F2 diag(1 - tanh(F1 x0)^2) F1)
    x0, x1 = x[:20], x[20:]
    h = np.tanh(F1 @ x0)
    z = W1 @ x1 + F2 @ h
    want = (1.0 - np.tanh(z) ** 2)[:, None] * (F2 @ ((1.0 - h ** 2)[:, None] * F1))
    np.testing.assert_allclose(J.toarray()[20:, :20], want, atol=1e-12)


def test_newton_krylov_preconditions_function_block_networks():
    # the LU of the map's matrix inverts the Newton matrix the tangent gives
    m, _ = _function_block_network()
    F = _Power(m, 1, None, np)
    x = np.random.default_rng(4).normal(0.0, 0.5, 40)
    M = nk._preconditioner(F, x)
    assert M is not None
    A, _ = nk.tangent_operator(F, x)
    V = np.random.default_rng(5).normal(size=(40, 3))
    np.testing.assert_allclose(M.matmat(A.matmat(V)), V, atol=1e-9)


def test_a_users_own_map_preconditions_through_the_protocol():
    # any map that gives approximate_jacobian is preconditioned, whatever its class
    W = _sparse(30, 1.3, 0.2, 2)

    class Mine(itermap.Map):
        dim = 30

        def step(self, x, u=None):
            return np.tanh(x @ W.T)

        def jacobian(self, x, u=None):
            return (1.0 - np.tanh(x @ W.T) ** 2)[..., :, None] * W.toarray()

        def approximate_jacobian(self, x, u=None, *, max_nnz=None):
            return sp.diags(1.0 - np.tanh(W @ x) ** 2) @ W

    F = _Power(Mine(), 1, None, np)
    x = np.random.default_rng(3).normal(0.0, 0.5, 30)
    M = nk._preconditioner(F, x)
    A, _ = nk.tangent_operator(F, x)
    V = np.random.default_rng(5).normal(size=(30, 2))
    np.testing.assert_allclose(M.matmat(A.matmat(V)), V, atol=1e-9)


# -- 2. gain_family: float32 maps take the batched path ---------------------------------
def test_gain_family_batches_float32_maps_as_float64_ones():
    W = np.random.default_rng(0).normal(0.0, 1.0 / np.sqrt(40), (40, 40))
    gains = np.array([0.3, 0.6, 0.8])
    out = {}
    for dtype in (np.float64, np.float32):
        m = itermap.IterativeMap(W.astype(dtype))
        x0 = np.full(40, 0.1, dtype=dtype)
        make = gain_family(m)
        assert make(gains).step(np.tile(x0, (3, 1))).dtype == dtype
        out[dtype] = lyapunov_scan(make, gains, x0, 400, k=2, transient=50)
        assert out[dtype].batched, dtype
    np.testing.assert_allclose(out[np.float32].exponents, out[np.float64].exponents,
                               rtol=1e-4, atol=1e-4)
    # below gain 1 / rho(W) the orbit settles at 0: the top exponent is log(g rho(W))
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    assert np.all(gains * rho < 1.0)
    np.testing.assert_allclose(out[np.float32].exponents[:, 0], np.log(gains * rho), atol=0.02)


# -- 3. covariant vectors of a nilpotent map (an MLP as a map) ---------------------------
def test_covariant_vectors_of_an_mlp_say_why_there_are_none():
    from itermap.analysis import covariant_lyapunov_vectors

    g = np.random.default_rng(0)
    mlp = itermap.IterativeMap.from_mlp([g.normal(size=(5, 3)), g.normal(size=(2, 5))],
                                        activation="tanh")
    with pytest.raises(ValueError, match="every tangent direction collapsed.*MLP"):
        covariant_lyapunov_vectors(mlp, np.full(mlp.dim, 0.3), 50, k=2, inputs=np.ones(3))


def test_the_report_says_covariant_vectors_do_not_apply_to_an_mlp(tmp_path):
    from itermap.analysis._report import run_report

    spec = tmp_path / "spec.toml"
    spec.write_text('seed = 0\n[networks.mlp]\nkind = "mlp"\nwidths = [3, 5, 2]\n'
                    '[[analyses]]\nkind = "covariant_vectors"\nnetwork = "mlp"\nsteps = 50\n')
    doc = run_report(spec, tmp_path / "rep", progress=False)
    (sec,) = doc["analyses"]
    assert "error" not in sec and sec["numbers"] == {"applicable": False, "fir_length": 2}
    assert "do not apply" in sec["notes"][0] and "−∞" in sec["notes"][0]


# -- 4. LogisticMap with an array r: errors that name the parameter ---------------------
def test_logistic_map_with_an_array_r_names_the_parameters():
    from itermap.systems import LogisticMap

    m = LogisticMap(np.array([3.5, 3.9]))
    with pytest.raises(ValueError, match=r"^x: .* r of shape \(2,\).*got shape \(3, 1\)"):
        m.step(np.full((3, 1), 0.3))
    with pytest.raises(ValueError, match=r"^r must be"):
        LogisticMap([[3.0], [3.5, 3.9]])          # ragged
    # the batch it was made for: row i runs with r[i] (closed form)
    np.testing.assert_allclose(m.step(np.full((2, 1), 0.3)), [[3.5 * 0.21], [3.9 * 0.21]])


# -- hunt: spectra_table refused the inputs of driven maps without an input block --------
def test_spectra_table_drives_gru_maps_and_networks_alike():
    from itermap.analysis import spectra_table

    g = np.random.default_rng(0)
    H = 5
    gru = itermap.GRUMap(g.normal(size=(3 * H, 2)) * 0.5, g.normal(size=(3 * H, H)) * 0.5)
    u = np.array([0.3, -0.2])
    t = spectra_table([gru], inputs=u, steps=400, transient=200, x0=None,
                      executor="serial", seed=0)
    assert not t.failures
    # under a constant input the GRU settles at a point h*: its exponents are the logs of
    # the moduli of the eigenvalues of the step's Jacobian there (central differences)
    h = np.zeros(H)
    for _ in range(2000):
        h = gru.step(h, u)
    J = np.stack([(gru.step(h + e, u) - gru.step(h - e, u)) / 2e-6
                  for e in np.eye(H) * 1e-6], axis=1)
    want = np.sort(np.log(np.abs(np.linalg.eigvals(J))))[::-1]
    np.testing.assert_allclose(t.raw[0], want, atol=0.02)


# -- hunt: fixed_points_pca took no Trajectory (a bare float() TypeError) ---------------
def test_fixed_points_pca_takes_the_trajectory_iterate_returns():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import find_fixed_points, plots

    m = itermap.random_rnn(8, gain=1.8, rng=3)
    X0 = np.random.default_rng(0).normal(0.0, 0.5, (3, 8))
    tr = itermap.iterate(m, X0, 30)
    fp = find_fixed_points(m, X0, progress=False)
    ax = plots.fixed_points_pca(fp, tr)
    ref = plots.fixed_points_pca(fp, np.asarray(tr.states))
    # the same figure as from the states array: the points at the same coordinates
    got = [c.get_offsets() for c in ax.collections]
    want = [c.get_offsets() for c in ref.collections]
    assert len(got) == len(want) >= 1
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="^states"):
        plots.fixed_points_pca(fp, {"not": "states"})
    plt.close("all")


# -- hunt: float32 weights that are all zero made a float64 map --------------------------
@pytest.mark.parametrize("W", [np.zeros((3, 3), np.float32),
                               sp.csr_matrix((3, 3), dtype=np.float32)])
def test_zero_float32_weights_keep_the_map_float32(W):
    m = itermap.IterativeMap(W, bias=np.full(3, 0.5, np.float32), leak=0.5)
    x = np.ones(3, np.float32)
    y = m.step(x)
    assert m.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.5 * x + 0.5 * np.tanh(0.5), rtol=1e-6)   # no weights
    # a sparse random network drawn without any weight: the dtype asked for
    assert itermap.random_rnn(1, density=0.25, rng=0, dtype=np.float32).dtype == np.float32


# -- hunt: the report's scan note read "reaches that only at gain -." without mean field --
def test_the_scan_note_of_a_sparse_network_names_no_missing_mean_field_gain(tmp_path):
    from itermap.analysis._report import run_report

    spec = tmp_path / "spec.toml"
    spec.write_text('seed = 1\n[networks.rnn]\nkind = "random_rnn"\nn = 10\ndensity = 0.3\n'
                    '[[analyses]]\nkind = "lyapunov_scan"\nnetwork = "rnn"\n'
                    'gains = [0.5, 2.0]\nsteps = 30\ntransient = 10\nseeds = 2\n')
    doc = run_report(spec, tmp_path / "rep", progress=False)
    (sec,) = doc["analyses"]
    assert sec["numbers"]["mean_field"] is None       # a sparse network: no mean field
    note = sec["notes"][0]
    assert "gain -" not in note and "mean-field exponent reaches" not in note
    assert "chaos is declared above 0.01 nats/step. Finite N" in note


# -- hunt: a spectrum result passed for its exponents: "got dtype object" ------------------
def test_kaplan_yorke_of_a_result_says_to_pass_its_exponents():
    from itermap.analysis import entropy_rate, kaplan_yorke_dimension, lyapunov_spectrum
    from itermap.systems import henon

    res = lyapunov_spectrum(henon(), np.array([0.1, 0.1]), 2000, rng=0)
    for fn in (kaplan_yorke_dimension, entropy_rate):
        with pytest.raises(TypeError, match=r"^exponents .*LyapunovSpectrum: pass its "
                                            r"\.exponents"):
            fn(res)
    # the Henon attractor's dimension, about 1.26 (Kaplan-Yorke's formula, Grassberger's
    # published exponents 0.419 and -1.623)
    assert kaplan_yorke_dimension(res.exponents) == pytest.approx(1.258, abs=0.01)


# -- hunt: newton-krylov gave a float32 map's points in float64 (newton: float32) --------
def test_newton_krylov_points_keep_the_starts_dtype():
    from itermap.analysis import find_fixed_points

    W = _sparse(30, 1.5, 0.2, 0).astype(np.float32)
    m = itermap.IterativeMap(W)
    X0 = np.random.default_rng(0).normal(0.0, 0.5, (3, 30)).astype(np.float32)
    fp = find_fixed_points(m, X0, method="newton-krylov", progress=False)
    ref = find_fixed_points(m, X0, method="newton", progress=False)
    assert fp.points.dtype == ref.points.dtype == np.float32
    W64 = W.astype(np.float64)
    for p in fp.points:     # points of tanh(W x) = x to float32 rounding (plain product)
        p = p.astype(np.float64)
        assert np.linalg.norm(np.tanh(W64 @ p) - p) <= 1e-5


# -- hunt: check_map drew a float32 driven map's input in float64 ------------------------
def test_check_map_passes_a_float32_driven_network():
    g = np.random.default_rng(0)
    m = itermap.IterativeMap.from_rnn((g.normal(size=(6, 6)) * 0.4).astype(np.float32),
                                      g.normal(size=(6, 2)).astype(np.float32))
    u = np.ones((3, 2), np.float32)
    X = g.normal(size=(3, m.dim)).astype(np.float32)
    assert m.step(X, u).dtype == np.float32        # the map keeps float32 given float32
    r = itermap.check_map(m, rng=0, tol=1e-2)      # (float32 central differences)
    assert r.passed and r.errors["jacobian"] <= 1e-2


# -- hunt: deep_lssl made float32 layers a float64 network -------------------------------
def test_deep_lssl_keeps_float32_layers_float32():
    A = np.array([[-1.0, 0.3], [0.0, -0.5]])
    B, C = np.array([[1.0], [0.5]]), np.array([[1.0, -1.0]])
    nets = {}
    for dt in (np.float64, np.float32):
        layer = itermap.LinearStateSpace(A.astype(dt), B.astype(dt), C.astype(dt), dt=0.1)
        nets[dt] = itermap.deep_lssl([layer, layer])
        assert nets[dt].dtype == dt
    x = np.zeros((1, nets[np.float64].dim))
    u = np.ones((1, 1))
    y64 = nets[np.float64].step(x, u)
    y32 = nets[np.float32].step(x.astype(np.float32), u.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-6, atol=1e-7)
    # the first layer's state after one step from 0: B_bar u, bilinear B_bar = (I - dt/2 A)^-1 dt B
    Bbar = np.linalg.solve(np.eye(2) - 0.05 * A, 0.1 * B)
    np.testing.assert_allclose(y64[0, 1:3], Bbar[:, 0], rtol=1e-12)


# -- hunt: `itermap demo --seed -2` ended in NumPy's traceback -----------------------------
def test_the_demo_refuses_a_negative_seed_naming_it(capsys):
    from itermap.analysis.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["demo", "--seed", "-2"])
    assert exc.value.code == 2
    assert "argument --seed: expected a non-negative integer, got '-2'" in capsys.readouterr().err


# -- hunt: newton-krylov padded a small map's multipliers with zeros ---------------------
@pytest.mark.parametrize("method", ["newton-krylov", "homotopy"])
def test_a_one_unit_map_has_one_multiplier(method):
    from itermap.analysis import find_fixed_points

    g, c = 1.5, 0.2
    m = itermap.IterativeMap(np.array([[g]]), bias=np.array([c]))
    fp = find_fixed_points(m, np.array([[0.9]]), method=method, progress=False)
    assert np.asarray(fp.eigenvalues).shape == (len(fp.points), 1)
    for p, ev in zip(np.asarray(fp.points)[:, 0], np.asarray(fp.eigenvalues)[:, 0]):
        # x = tanh(g x + c): the multiplier is g (1 - x^2)
        assert abs(np.tanh(g * p + c) - p) <= 1e-10
        assert ev == pytest.approx(g * (1.0 - p * p), abs=1e-9)


# -- hunt: the report refused a lyapunov analysis of a small network for the default k ---
def test_the_default_k_of_a_lyapunov_section_fits_a_small_network(tmp_path):
    from itermap.analysis._report import SpecError, run_report

    spec = tmp_path / "spec.toml"
    net = '[networks.rnn]\nkind = "random_rnn"\nn = 5\ngain = 0.5\n'
    spec.write_text('seed = 0\n' + net + '[[analyses]]\nkind = "lyapunov"\nnetwork = "rnn"\n'
                    'steps = 300\n')
    doc = run_report(spec, tmp_path / "rep", progress=False)
    (sec,) = doc["analyses"]
    exps = np.asarray(sec["numbers"]["exponents"], dtype=float)
    assert exps.shape == (5,)                      # all five, not the default 8
    # gain 0.5: the orbit settles at 0, where the exponents are log|eig(0.5 W)| (below 0)
    assert np.all(exps < 0)
    spec.write_text('seed = 0\n' + net + '[[analyses]]\nkind = "lyapunov"\nnetwork = "rnn"\n'
                    'k = 8\n')
    with pytest.raises(SpecError, match=r"k: 8 exponents exceed the dimension 5"):
        run_report(spec, tmp_path / "rep2", progress=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_loose_tol_widens_the_default_merging_radius(seed):
    # at tol = 1e-3 copies of one point lie ~tol / sigma_min(I - J) apart: with the old
    # default radius (1e-6) seed 1 returned 11 points that Newton polishing takes to 9
    m = itermap.random_rnn(60, gain=2.0, rng=seed)
    x0 = sample_states(m, 16, rng=seed + 10)
    fp = find_fixed_points(m, x0, tol=1e-3, progress=False)
    P = np.asarray(fp.points)
    W = np.asarray(m.weights.to_dense())
    polished = []
    for p in P:                      # plain Newton on tanh(W x) - x from each point
        x = p.copy()
        for _ in range(50):
            d = 1.0 - np.tanh(W @ x) ** 2
            x = x - np.linalg.solve(d[:, None] * W - np.eye(len(x)), np.tanh(W @ x) - x)
        assert np.linalg.norm(np.tanh(W @ x) - x) <= 1e-10
        polished.append(x)
    Q = np.array(polished)
    dist = np.linalg.norm(Q[:, None] - Q[None], axis=-1) + np.eye(len(Q))
    assert dist.min() > 1e-6          # each returned point polishes to its own point


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_continuation_of_a_float32_map_reaches_its_folds(dtype):
    # x -> tanh(W x + c c1), W of 8 units: float32 steps never meet the float64 default
    # tol (1e-10), and the branch stopped at its first step; the default now follows the
    # dtype. The folds of x -> tanh(2 x + c) are at c = +-(atanh(1/sqrt 2) - sqrt 2)
    fold = np.arctanh(2 ** -0.5) - 2 ** 0.5
    one = continuation(lambda c: itermap.IterativeMap(np.array([[2.0]], dtype=dtype),
                                                      bias=np.array([c], dtype=dtype)),
                       [-1.0, 1.0], np.array([-0.96], dtype=dtype))
    found = sorted(b["parameter"] for b in one.bifurcations if b["kind"] == "fold")
    np.testing.assert_allclose(found, [fold, -fold], atol=1e-4)
    W = np.asarray(itermap.random_rnn(8, gain=1.0, rng=3).weights.to_dense(), dtype=dtype)
    net = continuation(lambda g: itermap.IterativeMap(W * g, bias=np.full(8, 0.3, dtype=dtype)),
                       [0.5, 3.0], np.zeros(8))
    assert net.message == "" and net.parameters[-1] > 2.5   # not stopped at its first step
    ref = [b["kind"] for b in continuation(
        lambda g: itermap.IterativeMap(W.astype(np.float64) * g, bias=np.full(8, 0.3)),
        [0.5, 3.0], np.zeros(8)).bifurcations]
    assert [b["kind"] for b in net.bifurcations] == ref == ["period doubling", "Neimark-Sacker"]
    with pytest.raises(ValueError, match="tol"):
        if dtype is np.float32:
            continuation(lambda g: itermap.IterativeMap(W * g), [0.5, 3.0], np.zeros(8), tol=1e-10)
        else:
            raise ValueError("tol: float64 reaches 1e-10")


def test_graph_properties_sees_function_blocks():
    # the function block (1, 0) was dropped: two disconnected blocks. Against the graph of
    # the map's own Jacobian pattern (central differences at a random state)
    import networkx as nx

    from itermap.analysis import graph_properties
    m, _ = _function_block_network(n=40)
    x = np.random.default_rng(2).normal(size=40) * 0.5
    J = _central_differences(lambda v: np.asarray(m.step(v[None]))[0], x)
    G = nx.Graph()
    G.add_nodes_from(range(40))
    G.add_edges_from((j, i) for i, j in zip(*np.nonzero(np.abs(J) > 1e-9)) if i != j)
    g = graph_properties(m, blocks=[0, 1])
    assert (g.nodes, g.edges) == (40, G.number_of_edges())
    assert g.component_nodes == 40 and g.density == pytest.approx(nx.density(G))
    assert g.diameter == nx.diameter(G)
