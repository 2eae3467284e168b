"""Transformers as iterative maps: block functions, their derivatives, torch's numbers.

torch's numbers come from fixtures (tests/fixtures/make_transformer_fixtures.py), so
these tests need no torch; tests/test_transformer_live.py checks live modules.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import (
    covariant_lyapunov_vectors,
    find_fixed_points,
    fir_length,
    impulse_response,
    lyapunov_spectrum,
    memory_capacity,
    sparsity_graph,
)
from itermap.block_functions import (
    Chain,
    FeedForward,
    LayerNorm,
    Residual,
    SelfAttention,
    transformer_layer,
)

FIX = Path(__file__).resolve().parent / "fixtures"
CASES = sorted(p.stem.removeprefix("transformer_") for p in FIX.glob("transformer_*.json"))


def _layer(rng, T, d, H, *, norm_first=False, causal=False, activation="relu", scale=1.0,
           dtype=np.float64):
    def w(*shape):
        return (scale * rng.normal(size=shape) / np.sqrt(shape[-1])).astype(dtype)

    att = SelfAttention(w(3 * d, d), w(3 * d), w(d, d), w(d), num_heads=H, seq_len=T,
                        causal=causal)
    ff = FeedForward(w(2 * d, d), w(2 * d), w(d, 2 * d), w(d), seq_len=T, activation=activation)
    norms = [LayerNorm((1 + 0.1 * rng.normal(size=d)).astype(dtype),
                       (0.1 * rng.normal(size=d)).astype(dtype), seq_len=T) for _ in range(2)]
    return transformer_layer(att, ff, *norms, norm_first=norm_first)


def _functions(rng, T=3, d=4):
    """Every built-in block function, with random parameters."""
    mask = rng.normal(size=(T, T))
    return {
        "layer_norm": LayerNorm(rng.normal(size=d), rng.normal(size=d), seq_len=T),
        "feed_forward_gelu": FeedForward(rng.normal(size=(5, d)), rng.normal(size=5),
                                         rng.normal(size=(d, 5)), None, seq_len=T,
                                         activation="gelu"),
        "attention_causal": SelfAttention(rng.normal(size=(3 * d, d)), rng.normal(size=3 * d),
                                          rng.normal(size=(d, d)), rng.normal(size=d),
                                          num_heads=2, seq_len=T, causal=True),
        "attention_mask": SelfAttention(rng.normal(size=(3 * d, d)), None,
                                        rng.normal(size=(d, d)), None, num_heads=1, seq_len=T,
                                        mask=mask),
        "residual_chain": Residual(Chain([LayerNorm(np.ones(d), np.zeros(d), seq_len=T),
                                          FeedForward(rng.normal(size=(3, d)), None,
                                                      rng.normal(size=(d, 3)), None,
                                                      seq_len=T, activation="tanh")])),
        "post_ln_layer": _layer(rng, T, d, 2),
        "pre_ln_layer": _layer(rng, T, d, 2, norm_first=True,
                               activation="gelu(approximate='tanh')"),
    }


# -- the derivatives of every block function --------------------------------------------
@pytest.mark.parametrize("name", list(_functions(np.random.default_rng(0))))
def test_block_function_tangent_is_the_finite_difference_derivative(name):
    rng = np.random.default_rng(1)
    g = _functions(rng)[name]
    x = rng.normal(size=(2, g.in_size))
    h = 1e-6
    J = np.stack([(g(x + h * e) - g(x - h * e)) / (2 * h) for e in np.eye(g.in_size)], axis=-1)
    v = rng.normal(size=(2, g.in_size, 3))
    np.testing.assert_allclose(g.tangent(x, v), J @ v, rtol=1e-6, atol=1e-7)
    # one state without a batch axis
    np.testing.assert_allclose(g.tangent(x[0], v[0]), J[0] @ v[0], rtol=1e-6, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(
    list(_functions(np.random.default_rng(0)))))
def test_block_function_vjp_is_the_transpose_of_its_tangent(seed, name):
    rng = np.random.default_rng(seed)
    g = _functions(rng)[name]
    x = rng.normal(size=(2, g.in_size))
    v = rng.normal(size=(2, g.in_size, 1))
    w = rng.normal(size=(2, g.out_size))
    # <w, J v> = <w J, v>: an exact identity, whatever the function
    lhs = np.einsum("bi,bi->b", w, g.tangent(x, v)[..., 0])
    rhs = np.einsum("bi,bi->b", g.vjp(x, w), v[..., 0])
    np.testing.assert_allclose(lhs, rhs, rtol=1e-11, atol=1e-11)


def test_attention_of_constant_scores_is_the_running_mean():
    # zero query and key projections: every score is 0, so a causal head averages the
    # values of the tokens so far (a closed form)
    T, d = 5, 2
    W = np.vstack([np.zeros((2 * d, d)), np.eye(d)])
    g = SelfAttention(W, None, np.eye(d), None, num_heads=1, seq_len=T, causal=True)
    X = np.random.default_rng(0).normal(size=(T, d))
    expected = np.cumsum(X, axis=0) / np.arange(1, T + 1)[:, None]
    np.testing.assert_allclose(g(X.ravel()).reshape(T, d), expected, rtol=1e-14)


def test_layer_norm_is_zero_mean_unit_variance_per_token():
    g = LayerNorm(np.ones(6), np.zeros(6), seq_len=4, eps=0.0)
    y = g(np.random.default_rng(0).normal(size=(3, 24))).reshape(3, 4, 6)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-14)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-13)


# -- torch's numbers, from fixtures -------------------------------------------------------
def _fixture(name):
    meta = json.loads((FIX / f"transformer_{name}.json").read_text())
    with np.load(FIX / f"transformer_{name}.npz") as data:
        arrays = {k: data[k] for k in data.files}
    weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w.")}
    m = itermap.from_torch(weights, meta["architecture"], seq_len=meta["seq_len"],
                           is_causal=meta["is_causal"], mask=arrays.get("mask"))
    return m, arrays, meta


def test_the_fixtures_cover_every_module_kind():
    kinds = set()
    for name in CASES:
        meta = json.loads((FIX / f"transformer_{name}.json").read_text())
        kinds |= {layer["kind"] for layer in meta["architecture"]["layers"]}
    assert kinds == {"encoder_layer", "attention"} and len(CASES) >= 5


@pytest.mark.parametrize("name", CASES)
def test_forward_equals_torchs_output(name):
    m, arrays, meta = _fixture(name)
    tol = 1e-10 if meta["dtype"] == "float64" else 1e-5
    out = m.forward(arrays["X"])
    assert out.shape == arrays["Y"].shape and out.dtype == np.dtype(meta["dtype"])
    np.testing.assert_allclose(out, arrays["Y"], rtol=0, atol=tol)


@pytest.mark.parametrize("name", CASES)
def test_iterating_L_steps_from_any_start_gives_torchs_output(name):
    m, arrays, meta = _fixture(name)
    L = m.settle_steps
    B = arrays["X"].shape[0]
    u = arrays["X"].reshape(B, -1)
    start = np.random.default_rng(0).normal(size=(B, m.dim)).astype(meta["dtype"])
    final = itermap.iterate(m, start, L, inputs=u, keep="last").final
    tol = 1e-10 if meta["dtype"] == "float64" else 1e-5
    np.testing.assert_allclose(m.readout(final).reshape(arrays["Y"].shape), arrays["Y"],
                               rtol=0, atol=tol)


@pytest.mark.parametrize("name", CASES)
def test_the_tangent_of_the_whole_map_equals_torchs_jvp(name):
    # the tangent along the input enters through the input block: after L steps of the
    # tangent map from a perturbation of block 0's successor, compare the layer chain
    m, arrays, meta = _fixture(name)
    if meta["dtype"] != "float64":
        pytest.skip("the jvp is checked in float64")
    fns = [m.functions[(l + 1, l)] for l in range(m.settle_steps)]
    x = arrays["X"][0].ravel()
    v = arrays["V"][0].ravel()[:, None]
    for g in fns:  # the chain rule through the layers, one block function at a time
        v = g.tangent(x, v)
        x = g(x)
    np.testing.assert_allclose(v[:, 0], arrays["JV"][0].ravel(), rtol=0, atol=1e-10)


# -- the structure the paper's claim predicts ----------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    rng = np.random.default_rng(3)
    return itermap.transformer_map([_layer(rng, 4, 6, 2), _layer(rng, 4, 6, 3, norm_first=True),
                                    _layer(rng, 4, 6, 1, causal=True)])


def test_a_transformer_of_L_layers_has_a_finite_impulse_response_of_length_L(encoder):
    assert encoder.settle_steps == 3
    assert fir_length(encoder) == 3
    u = np.random.default_rng(0).normal(size=encoder.input_size)
    resp = impulse_response(encoder, encoder.zeros(), 6, inputs=u)
    # as for an MLP of L layers: the response is exactly zero from step L on
    norms = np.asarray(resp.norms).sum(axis=(1, 2))
    assert resp.length == 3 and np.all(norms[3:] == 0.0) and np.all(norms[:3] > 0)


def test_every_lyapunov_exponent_of_a_transformer_map_is_minus_infinity(encoder):
    u = np.random.default_rng(0).normal(size=encoder.input_size)
    spec = lyapunov_spectrum(encoder, encoder.zeros(), steps=8, inputs=u, k=5, transient=0)
    assert np.all(np.isneginf(spec.exponents))


def test_L_plus_5_steps_leave_the_state_unchanged(encoder):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(2, encoder.input_size))
    x = itermap.iterate(encoder, rng.normal(size=(2, encoder.dim)), 3 + 5, inputs=u,
                        keep="last").final
    np.testing.assert_array_equal(encoder.step(x, u), x)


def test_check_map_passes_on_a_map_of_matrix_and_function_blocks():
    rng = np.random.default_rng(2)
    T, d = 2, 4
    n = T * d
    # block 1 <- 0 a layer, block 1 <- 1 a sparse-ish matrix, block 2 <- 1 a matrix
    W = itermap.BlockMatrix([n, n, 3], {(1, 1): 0.3 * rng.normal(size=(n, n)),
                                        (2, 1): rng.normal(size=(3, n))})
    m = itermap.IterativeMap(W, rng.normal(size=2 * n + 3), ["identity", "tanh", "sigmoid"],
                             input_block=0, functions={(1, 0): _layer(rng, T, d, 2)})
    report = itermap.check_map(m, rng=0)
    assert report.passed and report.errors["jacobian"] < 1e-6
    assert fir_length(m) is None  # the matrix block (1, 1) is a cycle


def test_the_sparsity_graph_draws_function_blocks_as_labelled_block_edges(encoder):
    B = sparsity_graph(encoder, level="block")
    assert sorted(B.edges(data="function")) == [
        (0, 1, "encoder_layer(post-LN)"), (1, 2, "encoder_layer(pre-LN)"),
        (2, 3, "encoder_layer(post-LN)")]
    G = sparsity_graph(encoder)
    assert G.number_of_edges() == 0 and len(G.graph["functions"]) == 3


def test_a_transformer_map_saves_loads_and_pickles_exactly(encoder, tmp_path):
    back = itermap.load(itermap.save(encoder, tmp_path / "t.npz"))
    pickled = pickle.loads(pickle.dumps(encoder))
    rng = np.random.default_rng(0)
    x, u = rng.normal(size=(2, encoder.dim)), rng.normal(size=(2, encoder.input_size))
    for other in (back, pickled):
        assert other == encoder
        np.testing.assert_array_equal(other.step(x, u), encoder.step(x, u))


def test_a_float32_transformer_stays_float32():
    rng = np.random.default_rng(0)
    m = itermap.transformer_map([_layer(rng, 3, 4, 2, dtype=np.float32)])
    assert m.dtype == np.float32
    y = m.forward(rng.normal(size=(2, 3, 4)).astype(np.float32))
    assert y.dtype == np.float32 and y.shape == (2, 3, 4)


# -- the looped transformer ----------------------------------------------------------------
def test_a_small_post_ln_looped_layer_has_a_unique_fixed_point():
    rng = np.random.default_rng(4)
    m = itermap.looped_transformer_map(_layer(rng, 3, 4, 2, scale=0.1))
    e = rng.normal(size=m.input_size)
    # the loop contracts: iterating from two far-apart starts meets in one point
    a = itermap.iterate(m, rng.normal(size=m.dim), 200, inputs=e, keep="last").final
    b = itermap.iterate(m, 10 * rng.normal(size=m.dim), 200, inputs=e, keep="last").final
    np.testing.assert_allclose(a, b, atol=1e-10)
    fps = find_fixed_points(m, rng.normal(size=(8, m.dim)), inputs=e)
    # one attracting point, the loop's limit (LayerNorm's scale invariance may leave
    # unstable points besides it)
    assert int(np.sum(fps.stable)) == 1
    point = fps.points[np.flatnonzero(fps.stable)[0]]
    np.testing.assert_allclose(point, a, atol=1e-8)
    np.testing.assert_allclose(m.step(point, e), point, atol=1e-10)


def test_a_pre_ln_looped_layer_grows_by_its_input_and_has_no_fixed_point():
    rng = np.random.default_rng(5)
    m = itermap.looped_transformer_map(_layer(rng, 3, 4, 2, norm_first=True, scale=0.1))
    e = np.ones(m.input_size)
    traj = itermap.iterate(m, m.zeros(), 50, inputs=e)
    growth = np.diff(np.asarray(traj.states) @ e / (e @ e))
    np.testing.assert_allclose(growth[10:], 1.0, atol=0.2)  # the stream grows by e a loop
    # Newton runs off to |x| ~ 1e20, where F(x) - x rounds to exactly 0: no point there
    for method in ("newton", "q"):
        fps = find_fixed_points(m, rng.normal(size=(4, m.dim)), inputs=e, method=method,
                                progress=False)
        assert len(fps.points) == 0, method


# -- bad input ---------------------------------------------------------------------------
def test_bad_transformer_arguments_are_named():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="num_heads"):
        SelfAttention(rng.normal(size=(15, 5)), None, rng.normal(size=(5, 5)), None,
                      num_heads=2, seq_len=3)
    with pytest.raises(ValueError, match="mask"):
        SelfAttention(rng.normal(size=(12, 4)), None, rng.normal(size=(4, 4)), None,
                      num_heads=2, seq_len=3, mask=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="mask"):  # a token left nothing to attend to
        SelfAttention(rng.normal(size=(12, 4)), None, rng.normal(size=(4, 4)), None,
                      num_heads=2, seq_len=2, mask=np.ones((2, 2), dtype=bool))
    m, arrays, meta = _fixture("encoder_post_ln")
    with pytest.raises(ValueError, match="x must have shape"):  # T disagrees with seq_len
        m.forward(arrays["X"][:, :-1])
    with pytest.raises(ValueError, match="seq_len"):
        itermap.from_torch({"in_proj_weight": np.zeros((12, 4))},
                           {"type": "Transformer", "layers": [
                               {"kind": "attention", "prefix": "", "num_heads": 2}]})
    with pytest.raises(ValueError, match="functions"):
        itermap.IterativeMap(itermap.BlockMatrix([12, 5]), functions={
            (1, 0): LayerNorm(np.ones(4), np.zeros(4), seq_len=3)})
    with pytest.raises(TypeError, match="functions"):
        itermap.IterativeMap(np.zeros((2, 2)), functions={(0, 0): np.tanh})


def test_the_transformer_report_kind(tmp_path):
    from itermap.analysis._report import SpecError, run_report

    spec = {"networks": {"r": {"kind": "random_rnn", "n": 3}},
            "analyses": [{"kind": "transformer", "tokens": 3, "width": 4, "layers": 2,
                          "gains": [0.5, 4.0], "seeds": 2, "steps": 60, "transient": 20}]}
    doc = run_report(spec, tmp_path / "rep", progress=False)
    nums = doc["analyses"][0]["numbers"]
    assert nums["fir_length"] == 2
    assert all(r > 0 for r in nums["response"][:2]) and nums["response"][2:] == [0.0] * 3
    assert np.asarray(nums["exponents"]).shape == (2, 2)
    assert list((tmp_path / "rep" / "figures").glob("*looped_transformer.png"))
    bad = {**spec, "analyses": [{"kind": "transformer", "width": 6, "heads": 4}]}
    with pytest.raises(SpecError, match="heads"):
        run_report(bad, tmp_path / "bad", progress=False)


def test_the_block_matrix_figure_marks_function_blocks(encoder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from itermap.analysis import plots

    ax = plots.block_matrix(encoder)
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch() == "//"]
    assert len(hatched) == 3                      # one per layer, at its block
    n = encoder.sizes[0]
    assert sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in hatched) == [
        (0, n), (n, 2 * n), (2 * n, 3 * n)]
    texts = [t.get_text() for t in ax.texts]
    assert sum("encoder_layer" in t for t in texts) == 3
    legend = [t.get_text() for leg in ax.figure.legends + [ax.get_legend()] if leg
              for t in leg.get_texts()]
    assert "function block (3)" in legend
    plt.close(ax.figure)


def test_the_memory_of_a_transformer_map_ends_with_its_depth():
    # a finite impulse response of length L: the inputs of the last L steps are readable
    # from the state, older ones are gone (an MLP's memory, Hershey et al.)
    rng = np.random.default_rng(0)
    m = itermap.transformer_map([_layer(rng, 2, 4, 2, activation="tanh"),
                                 _layer(rng, 2, 4, 2, norm_first=True)])
    mc = memory_capacity(m, max_delay=5, steps=1500, rng=0)
    r2 = dict(zip(mc.delays.tolist(), np.asarray(mc.r2).tolist()))
    assert r2[1] > 0.3 and r2[2] > 0.3
    assert max(r2[3], r2[4], r2[5]) < 0.05


def test_covariant_vectors_of_a_looped_layer_agree_with_its_spectrum():
    rng = np.random.default_rng(1)
    loop = itermap.looped_transformer_map(_layer(rng, 2, 4, 2, activation="tanh", scale=3.0))
    e = 0.1 * rng.normal(size=loop.dim)
    x0 = rng.normal(size=loop.dim)
    cv = covariant_lyapunov_vectors(loop, x0, 400, inputs=e, transient=100, k=3)
    spec = lyapunov_spectrum(loop, x0, steps=400, inputs=e, transient=100, k=3)
    np.testing.assert_allclose(np.asarray(cv.exponents), np.asarray(spec.exponents), atol=0.05)
