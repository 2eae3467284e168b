"""Defects found by the round-19 fuzz campaign, each with the test that failed before its fix."""

from __future__ import annotations

import re

import numpy as np
import pytest

import itermap
from itermap.analysis import impulse_response, kaplan_yorke_dimension, resample_spectrum
from itermap.systems import linear


def _ky_loop(lam):
    """Kaplan-Yorke by its definition, a plain loop over the descending spectrum."""
    lam = sorted(lam, reverse=True)
    total = 0.0
    for j, value in enumerate(lam):
        if total + value < 0:
            return j + total / abs(value)
        total += value
    return float(len(lam))


@pytest.mark.parametrize("seed", range(6))
def test_kaplan_yorke_does_not_depend_on_the_order_of_the_exponents(seed):
    # a spectrum in any order (finite-time exponents of one window, a hand-made list) gave
    # 0.0 whenever its first entry was negative: [-1.0, 0.5] has dimension 1 + 0.5 / 1
    assert kaplan_yorke_dimension([-1.0, 0.5]) == pytest.approx(1.5)
    g = np.random.default_rng(seed)
    lam = np.concatenate([g.uniform(0.0, 1.0, 2), g.uniform(-3.0, -0.1, 4)])
    shuffled = g.permutation(lam)
    assert kaplan_yorke_dimension(shuffled) == pytest.approx(_ky_loop(lam), rel=1e-12)


def test_resample_spectrum_of_an_unsorted_spectrum_keeps_the_largest_first():
    # length=1 is documented as the largest exponent; an unsorted input gave its first
    assert resample_spectrum([-1.0, 0.5], 1) == pytest.approx([0.5])
    assert resample_spectrum([-2.0, 0.0, -1.0], 3) == pytest.approx([0.0, -1.0, -2.0])


@pytest.mark.parametrize("keep", ["all", "last"])
@pytest.mark.parametrize("x0", [np.array([1.0, 2.0]), np.ones((3, 2))])
def test_iterate_refuses_a_step_that_returns_the_wrong_shape(keep, x0):
    # a user's step that drops a coordinate was broadcast back into the (dim,) states:
    # a trajectory of the wrong map, without a word
    m = itermap.FunctionMap(lambda x: x[..., :1], 2, jacobian=lambda x: np.eye(2))
    with pytest.raises(ValueError, match="map"):
        itermap.iterate(m, x0, 3, keep=keep)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_nonlinear_impulse_response_of_a_float32_map_is_not_read_as_zero(dtype):
    # with eps=1e-6 a float32 difference is roundoff, the default tol came out above 1
    # and every response counted as zero: length 0 for a 3-layer MLP, no decay rate
    g = np.random.default_rng(0)
    W = [g.normal(size=(3, 2)), g.normal(size=(3, 3)), g.normal(size=(1, 3))]
    mlp = itermap.IterativeMap.from_mlp([w.astype(dtype) for w in W], activation="tanh")
    x = 0.3 * g.normal(size=mlp.dim).astype(dtype)
    assert impulse_response(mlp, x, 6, method="nonlinear").length == 3   # one step a layer
    # x -> x / 2 never forgets (in float32 only 2^-5 stays above the roundoff floor)
    half = linear(np.array([[0.5]], dtype=dtype))
    r = impulse_response(half, np.array([1.0], dtype=dtype), 5, method="nonlinear")
    assert r.length is None and r.decay_rate == pytest.approx(np.log(2.0), rel=1e-3)


def test_an_eps_below_roundoff_is_refused_not_read_as_zero():
    half = linear(np.array([[0.5]]))
    with pytest.raises(ValueError, match="eps"):
        impulse_response(half, np.array([1.0]), 12, method="nonlinear", eps=1e-15)


@pytest.mark.parametrize("bad", [3, None, "abc", "instance"])
def test_saveable_refuses_what_is_no_dataclass_with_a_named_error(bad):
    # anything without __name__ (an int, None) or a dataclass instance instead of its
    # class raised AttributeError from inside the decorator
    from dataclasses import dataclass

    @dataclass
    class Run:
        gain: float

    with pytest.raises(TypeError, match="cls"):
        itermap.saveable(Run(1.0) if bad == "instance" else bad)


def test_an_array_for_a_string_option_is_refused_with_a_named_error():
    # `task not in ("flip_flop", "digits")` compared an array elementwise and raised
    # NumPy's "truth value of an array is ambiguous", naming nothing
    with pytest.raises(ValueError, match="task"):
        itermap.datasets.zoo(task=np.array([0.0, 0.0]))
    arrays = {"weight_ih_l0": np.ones((2, 1)), "weight_hh_l0": np.eye(2)}
    with pytest.raises(ValueError, match="form"):
        itermap.from_torch(arrays, "RNN", form=np.array(["map", "iterative"]))


def test_compare_sequence_models_gives_the_same_exponents_for_the_same_seed():
    # its Lyapunov spectra drew their initial frames from fresh entropy (no rng passed),
    # so rng=0 gave another lssl exponent on every call (-0.013 ... -0.025)
    from itermap.analysis import compare_sequence_models

    runs = [compare_sequence_models(units=6, steps=8, max_delay=3, mc_steps=300,
                                    lyapunov_steps=40, k=3, rng=0) for _ in range(3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.exponents, runs[0].exponents)


def test_the_transformer_report_kind_gives_the_same_numbers_for_the_same_seed(tmp_path):
    # the looped layer's exponents started from a random frame of fresh entropy: the
    # spec's seed did not fix results.json
    from itermap.analysis._report import run_report

    spec = {"seed": 5, "networks": {"r": {"kind": "random_rnn", "n": 3}},
            "analyses": [{"kind": "transformer", "tokens": 3, "width": 4, "layers": 2,
                          "gains": [0.5, 4.0], "seeds": 2, "steps": 30, "transient": 5}]}
    nums = [run_report(spec, tmp_path / f"rep{i}", progress=False)["analyses"][0]["numbers"]
            for i in range(2)]
    assert nums[0]["exponents"] == nums[1]["exponents"]


ZERO_D = np.array(0.0)   # a 0-d array: it has __iter__ and __len__, but neither works


@pytest.mark.parametrize("call, name", [
    (lambda: impulse_response(itermap.random_rnn(3, rng=0), np.zeros(3), 3, blocks=ZERO_D),
     "blocks"),
    (lambda: itermap.IterativeMap.from_mlp(ZERO_D), "weights"),
    (lambda: itermap.IterativeMap.from_mlp([np.ones((2, 2))], biases=ZERO_D), "biases"),
    (lambda: itermap.FunctionMap(lambda x: x, 1, jacobian=lambda x: np.eye(1), periods=ZERO_D),
     "periods"),
    (lambda: itermap.analysis.equal_parameter_comparison(seeds=ZERO_D), "seeds"),
    (lambda: itermap.analysis.sweep(lambda a: a, {"a": ZERO_D}, progress=False), "grid"),
])
def test_a_0d_array_where_a_sequence_goes_gets_a_named_error(call, name):
    # found at --hypothesis-seed=23 (blocks=array(0.)): "iteration over a 0-d array" or
    # "len() of unsized object", naming no parameter
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_metadata_with_an_integer_of_5000_digits_is_a_corrupt_file_named_as_such(tmp_path):
    # Python refuses to parse an int of more than 4300 digits with a bare ValueError that
    # names neither the file nor what is wrong with it
    import io
    import json
    import zipfile

    path = itermap.save(itermap.random_rnn(3, rng=0), tmp_path / "net.npz")
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(bytes(np.load(io.BytesIO(members["__itermap__.npy"]))))
    text = json.dumps(meta).replace('"format_version": 2', '"format_version": ' + "9" * 5000)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(text.encode(), dtype=np.uint8))
    members["__itermap__.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="bad.npz: corrupt itermap metadata"):
        itermap.load(bad)


def test_a_spec_with_an_integer_of_5000_digits_is_refused_naming_the_file(tmp_path):
    # tomllib parses the int with int(), whose digit limit raised a bare ValueError: the
    # command line printed it without the spec's name
    from itermap.analysis._report import SpecError, load_spec

    spec = tmp_path / "huge.toml"
    spec.write_text('title = "x"\n[networks.a]\nkind = "random_rnn"\nn = ' + "9" * 5000 + "\n")
    with pytest.raises(SpecError, match="huge.toml: not valid TOML"):
        load_spec(spec)


def _run_class():
    from dataclasses import dataclass

    @itermap.saveable
    @dataclass
    class Run:
        a: object

    return Run


def test_save_refuses_a_masked_array_instead_of_dropping_its_mask(tmp_path):
    # the mask was dropped: [1.0, --] came back as [1.0, 2.0], the hidden value shown
    Run = _run_class()
    path = tmp_path / "run.npz"
    with pytest.raises(TypeError, match="mask"):
        itermap.save(Run(np.ma.masked_array([1.0, 2.0], mask=[False, True])), path)
    assert not path.exists()


@pytest.mark.parametrize("kind", ["cycle", "deep"])
def test_save_refuses_a_cyclic_or_too_deep_field_with_a_named_error(tmp_path, kind):
    # a list that holds itself (or 100000 nested lists) raised RecursionError
    Run = _run_class()
    value: list = []
    if kind == "cycle":
        value.append(value)
    else:
        cur = value
        for _ in range(100_000):
            cur.append([])
            cur = cur[0]
    path = tmp_path / "run.npz"
    with pytest.raises(TypeError, match="nested too deeply"):
        itermap.save(Run(value), path)
    assert not path.exists()


def test_memory_capacity_with_a_tiny_ridge_on_identical_units(tmp_path):
    # found at --hypothesis-seed=24 (ridge=1.2e-195): three identical units make the Gram
    # matrix singular, a ridge below roundoff does not lift it, and scipy's solve raised
    # LinAlgError; the readout is that of one unit (the ridge -> 0 limit)
    from itermap.analysis import memory_capacity

    three = itermap.IterativeMap.from_rnn(np.eye(3) * 0.5, np.ones((3, 1)))
    one = itermap.IterativeMap.from_rnn(np.eye(1) * 0.5, np.ones((1, 1)))
    got = memory_capacity(three, max_delay=3, steps=300, washout=20, rng=0, ridge=1e-195)
    want = memory_capacity(one, max_delay=3, steps=300, washout=20, rng=0)
    np.testing.assert_allclose(got.r2, want.r2, rtol=1e-9)


def test_a_weights_archive_without_the_prefix_is_named_in_the_error(tmp_path):
    # found by tests/test_untrusted_files.py's damaged-archive property at
    # --hypothesis-seed=41 (1500 examples): a damaged byte in a member's name left no key
    # with the prefix, and the error named the prefix but not the file
    path = tmp_path / "w.npz"
    np.savez(path, **{"nft.0.weight": np.ones((2, 3))})
    with pytest.raises(ValueError, match=re.escape(f"no key starts with 'net.' in {path}")):
        itermap.from_torch(path, ["Linear"], prefix="net.")


def test_hippo_refuses_an_order_whose_matrices_exceed_memory():
    # found at --hypothesis-seed=29 (3000 examples): hippo("legs", N) with N of a few
    # hundred thousand built N x N temporaries until the kernel killed the process
    from itermap.systems import hippo

    with pytest.raises(ValueError, match="N: "):
        hippo("legs", 10 ** 7)


@pytest.mark.parametrize("scale", [5e-324, 2.2e-313, 1e-160, 1.0, 1.2e77, 1e200])
def test_participation_ratio_does_not_depend_on_the_scale_of_a_vector(scale):
    # found at --hypothesis-seed=29 and 37: v^4 underflowed to 0 (a subnormal entry) or
    # overflowed to inf (1.2e77), and the ratio came out NaN; it is scale-free: one unit
    # carries a vector of ratio 1, two equal entries ratio 2, (1, 1, 1, 1) ratio 4
    from itermap.analysis import participation_ratio

    V = scale * np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(participation_ratio(V), [1.0, 2.0, 4.0], rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda g: itermap.random_rnn(4, gain=g, rng=0),
    lambda g: itermap.random_graph_rnn(10, gain=g, rng=0),
])
def test_a_gain_of_minus_zero_is_the_gain_zero(make):
    # found at --hypothesis-seed=36: -0.0 passed 'gain >= 0', then NumPy's normal refused
    # scale=-0.0 with 'scale < 0', naming nothing
    np.testing.assert_array_equal(make(-0.0).weights.to_dense(), make(0.0).weights.to_dense())


def test_mlp_continuum_refuses_layers_whose_weights_exceed_memory():
    # found at --hypothesis-seed=35 (3000 examples): sizes=[236451] * 3 drew 417 GiB of
    # weights (a MemoryError, or the kernel's kill where memory is overcommitted)
    with pytest.raises(ValueError, match="sizes: "):
        itermap.mlp_continuum([10 ** 6] * 3, recurrent=0.5, rng=0)
    # an input wider than memory would allow squared is fine when the layers are small
    m = itermap.mlp_continuum([200_000, 2, 2], rng=0)
    assert m.dim == 200_004


# -- analysis/fixed_points: found by the round's fuzz campaign, fixed by the lead ----------

def test_find_fixed_points_takes_a_unique_tol_whose_square_overflows():
    # unique_tol = 1.35e154: its square overflows a Python float (OverflowError before);
    # a radius that large merges every point into one, whichever the method
    from itermap.analysis import find_fixed_points
    from itermap.systems import henon

    starts = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    for method in ("auto", "newton", "q", "homotopy", "newton-krylov"):
        fp = find_fixed_points(henon(), starts, unique_tol=1.35e154, method=method,
                               progress=False)
        P = np.asarray(fp.points)
        assert len(P) == 1, method
        # a fixed point of the Henon map by its own formula (a = 1.4, b = 0.3)
        x, y = P[0]
        assert abs(1 - 1.4 * x * x + y - x) < 1e-10 and abs(0.3 * x - y) < 1e-10


def test_find_fixed_points_names_a_map_whose_jacobian_has_the_wrong_shape():
    # a FunctionMap whose jacobian returns (dim, dim) for a batch: a ValueError naming the
    # map and the shapes (before: a reshape error deep in the small-map loop); its step
    # with the wrong shape likewise
    from itermap.analysis import find_fixed_points

    def step(x, u=None):
        return np.tanh(2.0 * x)

    def flat_jacobian(x, u=None):
        return np.diag(2.0 / np.cosh(2.0 * x[0]) ** 2)

    m = itermap.FunctionMap(step, 2, jacobian=flat_jacobian)
    with pytest.raises(ValueError, match=r"map: its jacobian returned shape \(2, 2\)"):
        find_fixed_points(m, np.ones((3, 2)), progress=False)
    bad_step = itermap.FunctionMap(lambda x, u=None: np.tanh(x)[:, :1], 2,
                                   jacobian=flat_jacobian)
    with pytest.raises(ValueError, match=r"map: its step returned shape \(1, 1\)"):
        find_fixed_points(bad_step, np.ones((3, 2)), progress=False)
    good = itermap.FunctionMap(step, 2, jacobian=lambda x, u=None: np.stack(
        [np.diag(2.0 / np.cosh(2.0 * r) ** 2) for r in x]))
    fp = find_fixed_points(good, np.array([[1.0, -1.0], [0.1, 0.2]]), progress=False)
    x = np.asarray(fp.points)
    assert np.allclose(np.tanh(2 * x), x, atol=1e-10) and len(x) >= 2


def test_a_saturated_tanh_unit_has_its_finite_exponent(monkeypatch):
    # x -> tanh(50 x) rests at x* = tanh(50 x*) ~ 1, where 1 - tanh^2 rounds to 0: the
    # exponent read -inf. Closed form: log(50 sech^2(50 x*)), and sech^2 z = 4 e^{-2z}
    # (1 + e^{-2z})^-2 with x* = 1 to double precision: log 50 + log 4 - 100
    from itermap.analysis import lyapunov_spectrum

    m = itermap.IterativeMap(np.array([[50.0]]))
    lam = lyapunov_spectrum(m, np.array([[0.5]]), steps=200, transient=50).exponents
    np.testing.assert_allclose(lam, [np.log(50.0) + np.log(4.0) - 100.0], rtol=1e-12)
    # the same units uncoupled, as sparse weights, split on the pool (the sparse fused
    # step): every exponent
    import scipy.sparse as sp

    from itermap._running._threads import OPTIONS

    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)
    n = 300
    s = itermap.IterativeMap(sp.identity(n, format="csr") * 50.0)
    x0 = np.where(np.arange(n) % 2 == 0, 0.5, -0.3)[None, :]
    lam = lyapunov_spectrum(s, x0, k=10, steps=40, transient=10, rng=0).exponents
    np.testing.assert_allclose(lam, np.full(10, np.log(50.0) + np.log(4.0) - 100.0),
                               rtol=1e-12)


def test_from_pattern_refuses_blocks_beyond_memory_naming_sizes():
    # a dense "W" block of 6532 x (2^31 - 1) (110 TB) was a bare MemoryError; "Row=k"
    # draws m k entries, "R=p" its positions: each counted before drawing
    from itermap import BlockMatrix

    for token in ("W", "Row=3", "R=0.5"):
        with pytest.raises(ValueError, match=r"sizes: the pattern's blocks would take"):
            BlockMatrix.from_pattern([6532, 2**31 - 1], [["0", "0"], [token, "0"]], rng=0)
    # a large sparse block within memory still builds, with its exact count
    W = BlockMatrix.from_pattern([200_000, 200_000], [["0", "0"], ["S=1000", "0"]], rng=0)
    assert W.nnz == 1000
