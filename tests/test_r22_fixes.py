"""Round 22: the defects the users left (r22-fixes), each test failing before its fix."""

import numpy as np
import pytest


def _double(n):
    return {"y": n * 2}


def test_the_sweep_cache_tells_np_int64_from_int_and_reuses_plain_ints(tmp_path):
    from itermap.analysis import sweep

    run = lambda n: sweep(_double, [{"n": n}], executor="serial", cache=tmp_path,  # noqa: E731
                          progress=False)
    assert run(np.int64(1)).n_cached == 0
    assert run(1).n_cached == 0            # another computation: not the int64's record
    assert run(1).n_cached == 1            # the same plain value: read back
    assert run([np.float32(0.5)]).n_cached == 0 and run([0.5]).n_cached == 0


def test_covariant_vectors_of_a_one_unit_network_is_refused_up_front(tmp_path):
    from itermap.analysis._report import SpecError, run_report

    spec = {"networks": {"one": {"kind": "random_rnn", "n": 1, "gain": 0.5}},
            "analyses": [{"kind": "covariant_vectors", "network": "one", "steps": 40,
                          "transient": 5}]}
    with pytest.raises(SpecError, match=r"analyses\[0\]\.network"):
        run_report(spec, tmp_path / "r", progress=False)


BIG = 10 ** 400  # beyond float range


@pytest.mark.parametrize("call, name", [
    (lambda: __import__("itermap").random_rnn(2 ** 63), "n"),
    (lambda: __import__("itermap").random_rnn(10 ** 12), "n"),
    (lambda: __import__("itermap").random_rnn(BIG, density=0.01), "n"),
    (lambda: __import__("itermap").random_graph_rnn(BIG), "n"),
    (lambda: __import__("itermap").datasets.flip_flop(2, BIG), "steps"),
    (lambda: __import__("itermap").analysis.digits_model("mlp", hidden=BIG), "hidden"),
    (lambda: __import__("itermap").analysis.equal_parameter_comparison(seeds=2 ** 64), "seeds"),
], ids=["random_rnn 2**63", "random_rnn 10**12", "random_rnn 10**400", "random_graph_rnn",
        "flip_flop", "digits_model", "equal_parameter_comparison"])
def test_sizes_no_machine_holds_are_a_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_flip_flop_analysis_steps_beyond_float_range_names_steps():
    from pathlib import Path

    import itermap
    from itermap import analysis

    net = itermap.load(Path(analysis.__file__).parent / "data" / "flip_flop_rnn.npz")
    with pytest.raises(ValueError, match=r"\bsteps\b"):
        analysis.flip_flop_analysis(net, steps=BIG)


def test_the_fuzz_catalogue_counts_a_parameter_named_only_as_a_word():
    from tests import fuzz_api

    def refusing(message):
        def fn(n):
            raise ValueError(message)
        return fuzz_api.Case(fn, {"n": fuzz_api.Param(3, "int>=1")})

    # NumPy's message holds the letter n but names no parameter
    outcome = fuzz_api.classify(refusing("Maximum allowed dimension exceeded"), "n", "huge",
                                10 ** 12, True)[0]
    assert outcome == "unnamed"
    assert fuzz_api.classify(refusing("n: too large"), "n", "huge", 10 ** 12, True)[0] == "named"


def _kind(a):
    return {"kind": type(a).__name__}


def test_the_sweep_cache_tells_a_tuple_from_a_list(tmp_path):
    # JSON writes both as an array: a function that treats them apart got the other's record
    from itermap.analysis import sweep

    run = lambda a: sweep(_kind, [{"a": a}], executor="serial", cache=tmp_path,  # noqa: E731
                          progress=False)
    first = run((1, 2))
    assert first.n_cached == 0 and first.records[0]["kind"] == "tuple"
    other = run([1, 2])
    assert other.n_cached == 0 and other.records[0]["kind"] == "list"
    assert run([1, 2]).n_cached == 1 and run((1, 2)).n_cached == 1


def test_edge_of_chaos_of_a_non_tanh_network_is_refused_up_front(tmp_path):
    # it was refused only inside its section, after the sections before it had run
    from itermap.analysis._report import SpecError, run_report

    spec = {"networks": {"r": {"kind": "random_rnn", "n": 8, "gain": 1.0,
                               "activation": "relu"}},
            "analyses": [{"kind": "edge_of_chaos", "network": "r", "radii": [0.5, 1.5]}]}
    with pytest.raises(SpecError, match=r"analyses\[0\]\.network: edge_of_chaos runs tanh"):
        run_report(spec, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
