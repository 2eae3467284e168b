"""Round 23: a transformer researcher, a reservoir researcher and a population researcher.

Each number is checked against something independent of the code under test: torch's own
forward pass and its own refusals, networkx's edge count, LayerNorm's definition."""

import warnings

import networkx as nx
import numpy as np
import pytest

import itermap
from itermap.analysis._report import run_report


def _torch_forward(torch, model, X, **kw):
    """torch's forward on its reference path (a gradient turns the fused fast path off)."""
    with torch.enable_grad():
        Y = model(X.clone().requires_grad_(True), **kw)
    return (Y[0] if isinstance(Y, tuple) else Y).detach().numpy()


# -- from_torch: LayerNorms without a bias or without affine parameters --------------------

def _norm_cases(torch):
    nn, f64 = torch.nn, torch.float64
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 6, batch_first=True, bias=False, dtype=f64)
    enc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(4, 2, 6, batch_first=True, norm_first=True, dtype=f64), 2,
        norm=nn.LayerNorm(4, bias=False, dtype=f64), enable_nested_tensor=False)
    bare = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(4, 1, 5, batch_first=True, dtype=f64), 1,
        norm=nn.LayerNorm(4, elementwise_affine=False, dtype=f64), enable_nested_tensor=False)
    with torch.no_grad():  # weights away from the initial ones and zeros
        for model in (layer, enc, bare):
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return {"layer bias=False": layer.eval(), "final norm bias=False": enc.eval(),
            "final norm without affine": bare.eval()}


@pytest.mark.parametrize("case", ["layer bias=False", "final norm bias=False",
                                  "final norm without affine"])
def test_from_torch_reads_layer_norms_without_bias_or_affine_parameters(case):
    torch = pytest.importorskip("torch")
    model = _norm_cases(torch)[case]
    X = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    m = itermap.from_torch(model, seq_len=3)   # was: "missing the weight 'norm1.bias'"
    np.testing.assert_allclose(m.forward(X.numpy()), _torch_forward(torch, model, X),
                               rtol=0, atol=1e-12)
    back = itermap.to_torch(m)
    np.testing.assert_allclose(_torch_forward(torch, back, X), _torch_forward(torch, model, X),
                               rtol=0, atol=1e-12)


def test_from_torch_refuses_an_integer_mask_as_torch_does():
    torch = pytest.importorskip("torch")
    layer = torch.nn.TransformerEncoderLayer(4, 2, 6, batch_first=True,
                                             dtype=torch.float64).eval()
    mask = np.triu(np.ones((3, 3), dtype=np.int64), 1)   # 0/1 meaning "blocked"
    X = torch.zeros(1, 3, 4, dtype=torch.float64)
    with pytest.raises(Exception, match="only bool and floating"):   # torch's own answer
        layer(X, src_mask=torch.as_tensor(mask))
    # it was taken as an additive mask: 1 added to the scores, nothing blocked
    with pytest.raises(TypeError, match="mask"):
        itermap.from_torch(layer, seq_len=3, mask=mask)
    # the bool mask of the same pattern is what torch means, and is read
    m = itermap.from_torch(layer, seq_len=3, mask=mask.astype(bool))
    Xr = torch.randn(1, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    np.testing.assert_allclose(m.forward(Xr.numpy()),
                               _torch_forward(torch, layer, Xr,
                                              src_mask=torch.as_tensor(mask.astype(bool))),
                               rtol=0, atol=1e-12)


# -- from_graph(level="layers"): an edge of weight 0 is an edge --------------------------

def _ones(mask):
    return int(np.count_nonzero(mask.toarray() if hasattr(mask, "toarray") else mask))


def test_layers_level_keeps_an_edge_of_weight_zero_trainable():
    # layer 0 = {0, 1}, layer 1 = {2}: the two edges into node 2 share one block
    G = nx.DiGraph([(0, 2, {"w": 0.0}), (1, 2, {"w": 1.5})])
    m = itermap.from_graph(G, level="layers", weight="w", rng=0)
    hidden = [_ones(v) for k, v in m.block_matrix.trainable.items()
              if 0 not in k and k[0] != len(m.sizes) - 1]
    # as many trainable hidden weights as networkx counts edges (was 1: the zero dropped)
    assert sum(hidden) == G.number_of_edges()
    # the unit level agrees
    u = itermap.from_graph(G, weight="w", rng=0)
    assert _ones(u.block_matrix.trainable[(1, 1)]) == G.number_of_edges()


# -- the transformer report kind on the smallest stack ------------------------------------

def test_transformer_report_runs_one_token_of_width_one(tmp_path):
    spec = {"seed": 3, "networks": {"unused": {"kind": "random_rnn", "n": 2}},
            "analyses": [{"kind": "transformer", "tokens": 1, "width": 1, "heads": 1,
                          "layers": 1, "gains": [1.0], "seeds": 1, "steps": 10,
                          "transient": 1}]}
    res = run_report(spec, tmp_path / "r", progress=False)   # was: k=3 exceeds dim=2
    assert not res["failed"]
    numbers = res["analyses"][0]["numbers"]
    # LayerNorm of a width-1 token is its bias, whatever the input: every exponent -inf
    assert np.isneginf(float(numbers["exponents"][0][0]))
    assert numbers["fir_length"] == 1


# -- reservoirs and state-space layers: messages that name the parameter -----------------

def test_reservoir_readout_of_a_state_of_the_wrong_width_names_x():
    m = itermap.ReservoirMap(0.5 * np.eye(3), np.ones((3, 1)), readout_weights=np.ones((3, 1)))
    assert m.dim == 4                              # [u; x]: 1 input and 3 units
    with pytest.raises(ValueError, match=r"x: states must have shape \(\.\.\., 4\)"):
        m.readout(np.ones(3))                      # was numpy's matmul message


def test_zoh_overflow_is_refused_without_runtime_warnings():
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(1e6))               # the premise: exp(dt A) overflows float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # was RuntimeWarnings from expm first
        with pytest.raises(ValueError, match="dt=1000000.0: the discretised system overflows"):
            itermap.LinearStateSpace(np.eye(1), [1.0], [1.0], dt=1e6, method="zoh")


# -- block patterns: counts that are no whole number, or too many to draw ----------------

@pytest.mark.parametrize("token", ["S=inf", "S=1e400", "Row=inf", "S=nan", "Row=nan"])
def test_pattern_count_that_is_not_a_whole_number_is_refused_by_name(token):
    with pytest.raises(OverflowError):
        int(float("inf"))                          # the premise: what it used to raise
    grid = [["0", "0"], [token, "0"]]
    with pytest.raises(ValueError, match="needs a non-negative whole number"):
        itermap.BlockMatrix.from_pattern([1, 3], grid, rng=0)
    with pytest.raises(ValueError, match="needs a non-negative whole number"):
        itermap.BlockMatrix.from_description([1, 3], [1, 3], grid, rng=0)


@pytest.mark.parametrize("token", ["S=1e18", "Row=1e18"])
def test_description_with_more_draws_than_memory_names_block_types(token):
    # 10**18 int64 draws are 8e18 bytes, more than any machine holds (was a MemoryError)
    with pytest.raises(ValueError, match="block_types: block"):
        itermap.BlockMatrix.from_description([1, 2], [1, 2], [[0, 0], [token, 0]], rng=0)


# -- the edge of chaos of radii given in any order ----------------------------------------

def test_edge_of_chaos_does_not_depend_on_the_order_of_the_radii():
    from itermap.analysis import edge_of_chaos_scan

    kw = dict(n=40, density=0.3, seeds=2, steps=300)
    down = edge_of_chaos_scan([3.0, 0.5], [1.0], rng=0, **kw)   # the same reservoirs
    (m_hi, m_lo), = down.mean
    assert m_lo < 0 < m_hi                          # the sign changes inside the scan
    by_hand = 0.5 + (3.0 - 0.5) * (0.0 - m_lo) / (m_hi - m_lo)   # linear interpolation
    assert down.edge[0] == pytest.approx(by_hand, rel=1e-12)   # was NaN
    up = edge_of_chaos_scan([0.5, 3.0], [1.0], rng=0, **kw)
    assert up.edge[0] == pytest.approx(by_hand, rel=1e-12)


# -- values beyond float range ------------------------------------------------------------

def test_attention_whose_score_weights_overflow_is_refused_naming_scale():
    Wk, Wv, q = np.ones((2, 1)), np.ones((1, 1)), np.ones(2)
    with np.errstate(over="ignore"):
        assert np.isinf(1e308 * (q @ Wk)).all()   # the premise: 2e308 is past float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="scale"):   # was NaN states, silently
            itermap.AttentionRNN(Wk, Wv, q, scale=1e308)


def test_graph_edge_weight_beyond_float_range_names_weight():
    G = nx.Graph([(0, 1, {"w": 10 ** 400})])
    with pytest.raises(OverflowError):
        float(10 ** 400)                           # the premise
    with pytest.raises(ValueError, match="weight: edge"):   # was numpy's isfinite TypeError
        itermap.from_graph(G, weight="w")


# -- sequence models: too short a memory-capacity run -------------------------------------

def _runs(units, max_delay, mc_steps):
    from itermap.analysis import compare_sequence_models

    try:
        compare_sequence_models(units=units, steps=2, max_delay=max_delay, mc_steps=mc_steps,
                                lyapunov_steps=2, rng=0)
    except ValueError as exc:
        assert str(exc).startswith("mc_steps: ")   # was "steps=...": a key it has not
        return False
    return True


@pytest.mark.parametrize("units, max_delay", [(4, 1), (5, 150), (16, 20)])
def test_sequence_models_spec_accepts_exactly_the_mc_steps_that_run(units, max_delay):
    from itermap.analysis._report import SpecError, validate_spec

    def accepted(mc_steps):
        spec = {"networks": {"n": {"kind": "random_rnn", "n": 2}},
                "analyses": [{"kind": "sequence_models", "units": units,
                              "max_delay": max_delay, "mc_steps": mc_steps}]}
        try:
            validate_spec(spec)
        except SpecError as exc:
            assert "analyses[0].mc_steps" in str(exc)
            return False
        return True

    # the shortest run that works, found by running (the section failed after the spec passed)
    lo = next(s for s in range(100, 400) if _runs(units, max_delay, s))
    assert not _runs(units, max_delay, lo - 1)
    assert accepted(lo) and not accepted(lo - 1)


# -- a transient of 0 steps, as every other kind takes -----------------------------------

@pytest.mark.parametrize("kind, extra", [
    ("transformer", {"tokens": 1, "width": 2, "heads": 1, "layers": 1, "gains": [1.0],
                     "seeds": 1, "steps": 5}),
    ("zoo", {"k": 1, "latent": 1, "splits": 1, "steps": 5}),
])
def test_transformer_and_zoo_specs_take_no_transient(tmp_path, kind, extra):
    from itermap.analysis.lyapunov import lyapunov_spectrum

    # the analyses underneath take transient=0 (and edge_of_chaos's spec does)
    m = itermap.random_rnn(3, rng=0)
    assert lyapunov_spectrum(m, np.ones(3), 5, transient=0, rng=0).exponents.shape == (3,)
    spec = {"seed": 0, "networks": {"n": {"kind": "random_rnn", "n": 2}},
            "analyses": [{"kind": kind, "transient": 0, **extra}]}
    res = run_report(spec, tmp_path / kind, progress=False)   # was: must be >= 1
    assert not res["failed"]


# -- the train report kind: the spec's seed (or --seed) picks the training seeds ---------

def test_train_report_seed_changes_the_networks_trained(tmp_path):
    from itermap.analysis import equal_parameter_comparison

    def accuracy(seed):
        spec = {"seed": seed, "networks": {"n": {"kind": "random_rnn", "n": 2}},
                "analyses": [{"kind": "train", "hidden": 4, "densities": [0.5], "seeds": 1,
                              "epochs": 1}]}
        res = run_report(spec, tmp_path / f"s{seed}", progress=False)
        return np.asarray(res["analyses"][0]["numbers"]["accuracy"])

    direct = [equal_parameter_comparison(hidden=4, densities=(0.5,), seeds=[s], epochs=1)
              .accuracy for s in (0, 1)]
    assert not np.array_equal(direct[0], direct[1])   # the premise: other seeds, other nets
    # seed 0 trains seeds 0 .. n-1 as before; seed 1 others (was: the same numbers)
    np.testing.assert_array_equal(accuracy(0), direct[0])
    np.testing.assert_array_equal(accuracy(1), direct[1])
