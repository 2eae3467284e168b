"""Array kinds and options that got through (issue 23, items 1, 6, 7, 11-14).

np.matrix states crashed the process; masked arrays were used with their masks ignored
here and honoured there; complex weights got through from_torch and parameter_gradient;
arrays of two libraries failed deep inside; flip_flop_analysis and
equal_parameter_comparison checked nothing; float32 maps gave float64 CLVs and impulse
responses; the CLI took ``--time-limit nan``. Every expected answer here is the plain
NumPy computation of the same values, or the documented refusal.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
import itermap.analysis as analysis
from itermap import IterativeMap
from itermap.systems import henon, linear, standard_map

strict = pytest.importorskip("array_api_strict")
# np.matrix warns that it is not recommended: users still pass them, and so do these tests
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _masked(a):
    a = np.asarray(a, dtype=float)
    mask = np.zeros(a.shape, dtype=bool)
    mask.flat[0] = True
    return np.ma.masked_array(a, mask=mask)


# -- 1: np.matrix and other ndarray subclasses --------------------------------------------
def test_a_matrix_state_does_not_corrupt_the_heap_and_matches_the_plain_state():
    # main: heap corruption (SIGSEGV/SIGABRT) in np.stack on matrix rows, 3 of 3 runs
    code = textwrap.dedent("""
        import json, warnings
        import numpy as np
        import itermap
        from itermap.systems import henon, standard_map
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        out = {}
        for name, m in (("henon", henon()), ("standard", standard_map(0.9))):
            x = np.array([[0.1, 0.2], [0.3, -0.4]])
            for f in ("step", "jacobian"):
                got = getattr(m, f)(np.matrix(x))
                out[f"{name}.{f}"] = [type(got).__name__,
                                      bool(np.array_equal(got, getattr(m, f)(x)))]
            check = itermap.check_map(m, np.matrix(x))
            out[f"{name}.check_map"] = [type(check).__name__, bool(check.passed)]
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out) == 6
    for key, (kind, same) in out.items():
        if key.endswith("check_map"):
            assert kind == "MapCheck" and same, key
        else:
            assert kind == "ndarray" and same, key


class _Tagged(np.ndarray):
    """An ndarray subclass that overrides arithmetic (as np.matrix does with ``*``)."""

    def __mul__(self, other):
        return np.asarray(self) * 0.0  # a wrong answer, if it were ever used


@pytest.mark.parametrize("make", [lambda a: np.asmatrix(a), lambda a: a.view(_Tagged)])
def test_ndarray_subclass_states_run_as_plain_arrays(make):
    rnn = itermap.random_rnn(4, gain=0.9, rng=3)
    x = np.random.default_rng(0).normal(size=(3, 4))
    plain = itermap.iterate(rnn, x, 5).states
    got = itermap.iterate(rnn, make(x), 5).states
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, plain)
    for m in (henon(), standard_map(1.1)):
        y = np.random.default_rng(1).normal(size=(3, 2))
        np.testing.assert_array_equal(m.step(make(y)), m.step(y))
        np.testing.assert_array_equal(m.jacobian(make(y)), m.jacobian(y))


# -- 6: masked arrays -------------------------------------------------------------------
def _calls_with_masked():
    """(label, call of one masked argument, the parameter its error must name)."""
    rnn = itermap.random_rnn(3, gain=0.8, rng=0)
    mlp = IterativeMap.from_mlp([np.ones((3, 2)) * 0.3, np.ones((1, 3)) * 0.2])
    H = henon()
    x2 = np.array([0.1, 0.1])
    g = np.random.default_rng(0)
    xs, ys = g.normal(size=(8, 2)), g.integers(0, 1, size=8)
    return [
        ("iterate", lambda: itermap.iterate(H, _masked(x2), 3), "x0"),
        ("step", lambda: rnn.step(_masked(np.zeros(3))), "x"),
        ("IterativeMap weights", lambda: IterativeMap(_masked(np.eye(3))), "weights"),
        ("IterativeMap bias", lambda: IterativeMap(np.eye(3), _masked(np.ones(3))), "bias"),
        ("from_mlp", lambda: IterativeMap.from_mlp([_masked(np.ones((3, 2))),
                                                    np.ones((1, 3))]), "weights[0]"),
        ("from_rnn", lambda: IterativeMap.from_rnn(_masked(np.eye(2)), np.ones((2, 1))),
         "W_hh"),
        ("linear", lambda: linear(_masked(np.eye(2))), "A"),
        ("GRUMap", lambda: itermap.GRUMap(_masked(np.ones((6, 1))), np.ones((6, 2))),
         "weight_ih"),
        ("resolve_inputs", lambda: itermap.resolve_inputs(mlp, np.zeros(6),
                                                          _masked(np.ones(2)), 2), "inputs"),
        ("train", lambda: itermap.train(mlp, _masked(xs), ys, epochs=1, progress=False),
         "inputs"),
        ("find_fixed_points", lambda: analysis.find_fixed_points(H, _masked([[0.6, 0.2]])),
         "x0"),
        ("lyapunov_spectrum", lambda: analysis.lyapunov_spectrum(H, _masked(x2), 10), "x0"),
        ("kaplan_yorke_dimension", lambda: analysis.kaplan_yorke_dimension(
            _masked([0.4, -1.6])), "exponents"),
        ("affine_scan", lambda: itermap.affine_scan(_masked(np.full((4, 2, 2), 0.5)),
                                                    np.ones((4, 2))), "A"),
        ("tangent", lambda: rnn.tangent(np.zeros(3), _masked(np.eye(3))), "v"),
        ("FunctionMap.step", lambda: itermap.FunctionMap(
            lambda x: x * x, 1, jacobian=lambda x: 2 * x[..., None]).step(_masked([0.1])), "x"),
        ("forward", lambda: mlp.forward(_masked([1.0, 2.0])), "x"),
    ]


@pytest.mark.parametrize("label, call, name", _calls_with_masked(),
                         ids=[c[0] for c in _calls_with_masked()])
def test_masked_arrays_with_a_mask_are_refused_not_half_ignored(label, call, name):
    # main: iterate(henon, masked x0) ran from the masked entry's fill, not its value
    with pytest.raises(TypeError, match="masked") as err:
        call()
    assert name in str(err.value)


def test_a_masked_array_without_a_mask_is_its_values():
    H = henon()
    x = np.array([0.1, 0.1])
    for m in (np.ma.masked_array(x), np.ma.masked_array(x, mask=[False, False])):
        np.testing.assert_array_equal(itermap.iterate(H, m, 4).states,
                                      itermap.iterate(H, x, 4).states)


# -- 7: complex and integer weights -----------------------------------------------------
def test_from_torch_refuses_complex_weights_instead_of_dropping_the_imaginary_part():
    # main: cast with a ComplexWarning, the imaginary part silently dropped
    arrays = {"0.weight": np.ones((4, 3)) + 0.5j, "0.bias": np.zeros(4)}
    with pytest.raises(TypeError, match="0.weight.*complex"):
        itermap.from_torch(arrays, ["Linear"])
    arrays = {"0.weight": np.ones((4, 3)), "0.bias": np.zeros(4, dtype=complex)}
    with pytest.raises(TypeError, match="0.bias.*complex"):
        itermap.from_torch(arrays, ["Linear"])


def test_from_torch_refuses_a_complex_torch_state_dict():
    torch = pytest.importorskip("torch")
    state = {"0.weight": torch.ones((4, 3), dtype=torch.complex64), "0.bias": torch.zeros(4)}
    with pytest.raises(TypeError, match="complex"):
        itermap.from_torch(state, ["Linear"])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.bool_])
def test_integer_and_bool_weights_in_a_safetensors_file_are_refused(tmp_path, dtype):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "w.safetensors")
    st_numpy.save_file({"0.weight": np.ones((4, 3), dtype=dtype),
                        "0.bias": np.zeros(4, dtype=np.float32)}, path)
    with pytest.raises(TypeError, match="0.weight.*floating point"):
        itermap.from_torch(path, ["Linear"])


def test_float_weights_in_a_safetensors_file_still_load(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "w.safetensors")
    W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    st_numpy.save_file({"0.weight": W, "0.bias": np.zeros(4, dtype=np.float32)}, path)
    m = itermap.from_torch(path, ["Linear"])
    x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    y = m.readout(itermap.iterate(m, m.zeros(), m.settle_steps, inputs=x, keep="last").final)
    np.testing.assert_allclose(y, W @ x, rtol=1e-6)


def test_parameter_gradient_refuses_a_complex_w():
    # main: complex "gradients" of real weights
    m = itermap.random_rnn(3, rng=0)
    with pytest.raises(TypeError, match="w must be real"):
        m.parameter_gradient(np.zeros(3), np.ones(3) * 1j)


# -- 11: arrays of two libraries ---------------------------------------------------------
def _mixed_calls():
    S = strict.asarray
    rnn = itermap.random_rnn(3, gain=0.8, rng=0)
    mlp = IterativeMap.from_mlp([np.ones((3, 2)) * 0.3, np.ones((1, 3)) * 0.2])
    return [
        ("from_mlp", lambda: IterativeMap.from_mlp([S(np.ones((3, 2))), np.ones((1, 3))]),
         "weights[0]"),
        ("from_rnn", lambda: IterativeMap.from_rnn(S(np.eye(3)), np.ones((3, 1))), "W_hh"),
        ("IterativeMap", lambda: IterativeMap(S(np.eye(3)), np.zeros(3)), "bias"),
        ("GRUMap", lambda: itermap.GRUMap(S(np.ones((9, 2))), np.ones((9, 3))), "weight_ih"),
        ("iterate", lambda: itermap.iterate(rnn, S(np.zeros(3)), 2), "x0"),
        ("iterate inputs", lambda: itermap.iterate(mlp, np.zeros(6), 2,
                                                   inputs=S(np.ones(2))), "inputs"),
        ("tangent", lambda: rnn.tangent(np.zeros(3), S(np.eye(3))), "v"),
        ("vjp", lambda: rnn.vjp(np.zeros(3), S(np.ones(3))), "w"),
        ("linear_recurrence", lambda: itermap.linear_recurrence(
            np.full((4, 2, 2), 0.5), np.ones((4, 2)), S(np.zeros(2))), "x0"),
        ("lyapunov_scan", lambda: analysis.lyapunov_scan(
            itermap.systems.logistic, [3.5, 3.9], S(np.array([0.3])), 20), "x0"),
        ("find_fixed_points", lambda: analysis.find_fixed_points(
            rnn, S(np.zeros((1, 3)))), "x0"),
        ("train", lambda: itermap.train(mlp, S(np.ones((4, 2))), np.zeros(4, dtype=int),
                                        epochs=1, progress=False), "inputs"),
    ]


@pytest.mark.parametrize("label, call, name", _mixed_calls(), ids=[c[0] for c in _mixed_calls()])
def test_arrays_of_two_libraries_are_one_type_error_up_front(label, call, name):
    # main: AttributeError or IndexError from inside, or a mix accepted (from_mlp)
    with pytest.raises(TypeError, match="one namespace") as err:
        call()
    assert name in str(err.value)


def test_a_big_endian_state_reports_no_dtype_change():
    # main: check_map(m, >f8 state) failed with "step: turned dtype >f8 into float64"
    x = np.random.default_rng(0).normal(size=(3, 2))
    for m in (henon(), standard_map(0.7), itermap.random_rnn(2, rng=1)):
        native = itermap.check_map(m, x, rng=0)
        swapped = itermap.check_map(m, x.astype(">f8"), rng=0)
        assert swapped.passed and native.passed
        assert swapped == native  # the same checks on the same values


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(1, 6), st.integers(0, 2 ** 31 - 1), st.sampled_from(["<", ">", "="]))
def test_byte_order_and_matrix_form_never_change_a_trajectory(n, seed, order):
    rnn = itermap.random_rnn(n, gain=1.2, rng=seed)
    x = np.random.default_rng(seed).normal(size=(2, n))
    plain = itermap.iterate(rnn, x, 6).states
    other = itermap.iterate(rnn, x.astype(order + "f8"), 6).states
    np.testing.assert_array_equal(other, plain)
    np.testing.assert_array_equal(itermap.iterate(rnn, np.asmatrix(x), 6).states, plain)


# -- 12: flip_flop_analysis and equal_parameter_comparison -------------------------------
@pytest.fixture(scope="module")
def flip_flop_net():
    from pathlib import Path

    return itermap.load(Path(analysis.__file__).parent / "data" / "flip_flop_rnn.npz")


@pytest.mark.parametrize("kwargs, error, name", [
    ({"net": None}, TypeError, "net"), ({"net": henon()}, TypeError, "net"),
    ({"keep_trials": -1}, ValueError, "keep_trials"), ({"keep_trials": 0}, ValueError,
                                                       "keep_trials"),
    ({"trials": "3"}, TypeError, "trials"), ({"steps": 1}, ValueError, "steps"),
    ({"starts": 2.5}, TypeError, "starts"), ({"noise": float("nan")}, ValueError, "noise"),
    ({"noise": -0.1}, ValueError, "noise"), ({"trials": 10 ** 12}, ValueError, "trials"),
])
def test_flip_flop_analysis_checks_its_arguments(flip_flop_net, kwargs, error, name):
    # main: net=None gave AttributeError, keep_trials=-1 dropped the last trial silently
    args = {"net": flip_flop_net, "trials": 4, "steps": 20, "starts": 16, "keep_trials": 2,
            "rng": 0, **kwargs}
    with pytest.raises(error, match=name):
        analysis.flip_flop_analysis(args.pop("net"), **args)


def test_flip_flop_analysis_keeps_what_it_is_asked_for(flip_flop_net):
    res = analysis.flip_flop_analysis(flip_flop_net, trials=4, steps=20, starts=16,
                                      keep_trials=3, rng=0)
    assert res.hidden.shape == (20, 3, flip_flop_net.sizes[1])


@pytest.mark.parametrize("kwargs, error, name", [
    ({"seeds": "3"}, TypeError, "seeds"), ({"seeds": 0}, ValueError, "seeds"),
    ({"seeds": [0, -1]}, ValueError, "seeds"), ({"seeds": [0.5]}, TypeError, "seeds"),
    ({"seeds": True}, TypeError, "seeds"), ({"hidden": 0}, ValueError, "hidden"),
    ({"hidden": 2.5}, TypeError, "hidden"), ({"densities": [0.0]}, ValueError, "densities"),
    ({"densities": [1.5]}, ValueError, "densities"), ({"densities": "ab"}, TypeError,
                                                      "densities"),
    ({"epochs": 0}, ValueError, "epochs"), ({"lr": float("nan")}, ValueError, "lr"),
    ({"batch_size": -1}, ValueError, "batch_size"), ({"progress": 2}, TypeError, "progress"),
    ({"steps": None}, TypeError, "steps"),
])
def test_equal_parameter_comparison_checks_its_arguments(kwargs, error, name):
    # main: seeds="3" ran seed 3 (int("3")), hidden=0 and lr=nan reached training
    args = {"hidden": 4, "densities": (0.5,), "seeds": 1, "epochs": 1, "steps": 1,
            "batch_size": 256, **kwargs}
    with pytest.raises(error, match=name):
        analysis.equal_parameter_comparison(**args)


def test_the_two_training_analyses_are_in_the_fuzz_catalogue():
    from tests import fuzz_api

    for name in ("flip_flop_analysis", "equal_parameter_comparison"):
        assert name in fuzz_api.cases() and name not in fuzz_api.EXEMPT


# -- 13: float32 maps keep float32 -------------------------------------------------------
@pytest.mark.parametrize("gain", [0.5, 0.9, 1.6])
@pytest.mark.parametrize("n", [3, 6])
def test_a_float32_map_gives_float32_clv_vectors_that_agree_with_float64(gain, n):
    # main: vectors were float64 whatever the map's dtype
    m32 = itermap.random_rnn(n, gain=gain, rng=n, dtype=np.float32)
    m64 = itermap.random_rnn(n, gain=gain, rng=n, dtype=np.float64)
    x0 = np.full(n, 0.1)
    r32 = analysis.covariant_lyapunov_vectors(m32, x0.astype(np.float32), 12, transient=20,
                                              rng=0)
    r64 = analysis.covariant_lyapunov_vectors(m64, x0, 12, transient=20, rng=0)
    assert r32.vectors.dtype == np.float32 and r64.vectors.dtype == np.float64
    # unit vectors, each defined up to sign: compare |<v32, v64>| with 1
    dots = np.abs(np.sum(r32.vectors.astype(np.float64) * r64.vectors, axis=-2))
    gaps = np.diff(np.sort(r64.exponents))
    if gaps.size == 0 or gaps.min() > 0.05:  # well separated exponents: stable vectors
        np.testing.assert_allclose(dots, 1.0, atol=1e-2)


@pytest.mark.parametrize("method", ["linear", "nonlinear"])
@pytest.mark.parametrize("gain", [0.5, 1.2])
def test_a_float32_map_gives_float32_impulse_responses_that_agree_with_float64(method, gain):
    m32 = itermap.random_rnn(5, gain=gain, rng=2, dtype=np.float32)
    m64 = itermap.random_rnn(5, gain=gain, rng=2, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=5)
    ir32 = analysis.impulse_response(m32, x.astype(np.float32), 6, method=method,
                                     eps=1e-2 if method == "nonlinear" else 1e-6)
    ir64 = analysis.impulse_response(m64, x, 6, method=method,
                                     eps=1e-2 if method == "nonlinear" else 1e-6)
    assert ir32.norms.dtype == np.float32 and ir64.norms.dtype == np.float64
    np.testing.assert_allclose(ir32.norms, ir64.norms, rtol=2e-3, atol=2e-4)
    # row 0 is the impulse itself: sqrt(size) for the one state block (closed form)
    np.testing.assert_allclose(ir32.norms[0, 0, 0], math.sqrt(5), rtol=1e-6)


# -- 14: the command line ----------------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--time-limit", "nan"), ("--time-limit", "inf"), ("--time-limit", "-inf"),
    ("--time-limit", "-5"), ("--time-limit", "0"), ("--time-limit", "abc"),
    ("--blas-threads", "abc"), ("--blas-threads", "0"), ("--blas-threads", "-2"),
    ("--blas-threads", "1.5"),
])
def test_cli_refuses_a_bad_option_value_naming_the_option(tmp_path, capsys, option, value):
    # main: --time-limit nan turned the limit off; --blas-threads abc did not name the option
    from itermap.analysis.cli import main

    with pytest.raises(SystemExit) as done:
        main(["report", "--example", "--out", str(tmp_path / "r"), option, value])
    assert done.value.code == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), -1.0, 0.0, "60", True])
def test_run_report_refuses_a_time_limit_that_is_no_limit(tmp_path, limit):
    from itermap.analysis._report import run_report

    spec = {"networks": {"net": {"kind": "random_rnn", "n": 5, "gain": 0.5}},
            "analyses": [{"kind": "lyapunov", "network": "net", "steps": 20, "k": 1}]}
    with pytest.raises(ValueError, match="time_limit"):
        run_report(spec, tmp_path / "r", time_limit=limit, progress=False)
    assert not (tmp_path / "r").exists()


# -- the fuzz suite's array kinds --------------------------------------------------------
def test_the_fuzz_catalogue_tries_every_array_kind_on_states_and_arrays():
    from tests import fuzz_api

    for kind, value in (("state", np.zeros(3)), ("array", np.eye(2))):
        labels = {b[0] for b in fuzz_api._bad_values(fuzz_api.Param(value, kind))}
        assert {"masked", "matrix", "big-endian", "float16", "0-d",
                "mixed namespaces"} <= labels, labels


@pytest.mark.parametrize("call, name", [
    (lambda: itermap.iterate(henon(), np.zeros(2, dtype=np.float16), 2), "x0"),
    (lambda: IterativeMap(np.eye(2, dtype=np.float16)), "weights"),
    (lambda: analysis.find_fixed_points(henon(), np.zeros((1, 2), dtype=np.float16)), "x0"),
])
def test_half_precision_is_refused_by_name_not_by_lapack(call, name):
    # main: "array type float16 is unsupported in linalg", naming nothing
    with pytest.raises(TypeError, match="float16") as err:
        call()
    assert name in str(err.value)
