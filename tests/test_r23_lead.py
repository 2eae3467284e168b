"""Round 23, lead: a user's step that returns a coarser float than the starts."""

import numpy as np
import pytest

from itermap.analysis import find_fixed_points

A, B = 1.4, 0.3


class Float32Henon:
    """Hénon's map written by a user whose step returns float32 (a float32 model)."""

    dim = 2

    def step(self, x, u=None):
        x = np.asarray(x)
        return np.stack([1 - A * x[..., 0] ** 2 + x[..., 1], B * x[..., 0]],
                        axis=-1).astype(np.float32)

    def jacobian(self, x, u=None):
        x = np.asarray(x)
        J = np.zeros(x.shape[:-1] + (2, 2))
        J[..., 0, 0], J[..., 0, 1], J[..., 1, 0] = -2 * A * x[..., 0], 1.0, B
        return J


def _closed_form():
    # x = 1 - a x^2 + b x: a x^2 + (1 - b) x - 1 = 0
    xs = np.sort(np.roots([A, 1 - B, -1]))
    return np.stack([xs, B * xs], axis=1)


def test_float64_starts_on_a_float32_step_meet_float32s_tolerance():
    # before: tol stayed float64's 1e-10, which float32 residuals never meet: 0 of 5 starts
    # converged, every one "stalled", with no word of why
    x0 = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    fp = find_fixed_points(Float32Henon(), x0, progress=False)
    assert fp.n_converged == 5 and len(fp) == 2
    P = np.asarray(fp.points)
    np.testing.assert_allclose(P[np.argsort(P[:, 0])], _closed_form(), atol=1e-5)


def test_a_tol_below_the_steps_rounding_is_refused_naming_the_step():
    x0 = np.random.default_rng(1).uniform(-1, 1, (3, 2))
    with pytest.raises(ValueError, match=r"map: its step returns float32 for float64 starts; "
                                         r"tol=1e-10 .*a step that returns float64"):
        find_fixed_points(Float32Henon(), x0, tol=1e-10, progress=False)
    fp = find_fixed_points(Float32Henon(), x0, tol=1e-5, progress=False)
    assert len(fp) >= 1 and np.all(np.asarray(fp.residuals) <= 1e-5)


# -- what other helpers reported this round in the shared checks ------------------------------

class _OneStateHenon:
    """Hénon written for one state at a time (``x[0]`` is its first coordinate)."""

    dim = 2

    def step(self, x, u=None):
        return np.array([1 - A * x[0] ** 2 + x[1], B * x[0]])

    def jacobian(self, x, u=None):
        return np.array([[-2 * A * x[0], 1.0], [B, 0.0]])


def test_a_one_state_step_given_as_many_states_as_its_dim_is_named(monkeypatch):
    # two states of a 2-D map: the one-state step returns shape (2, 2), the shape check
    # passed, and the plain loop failed with NumPy's "setting an array element with a
    # sequence"; a batch of one state tells the two apart
    from itermap.analysis import lyapunov_spectrum

    monkeypatch.setenv("ITERMAP_NUMBA", "0")
    with pytest.raises(ValueError, match=r"map: its step failed on a batch of 1 state .*"
                                         r"returned shape \(2, 2\) for 2 states"):
        lyapunov_spectrum(_OneStateHenon(), np.full((2, 2), 0.1), 50)


def test_a_step_the_protocol_named_already_keeps_its_message():
    # FunctionMap's own check names a step that returns a list; the batch check re-wrapped it
    # as "failed on a batch of states ... the protocol's step takes a batch"
    from itermap.analysis import lyapunov_spectrum

    class ListStep:
        dim = 2

        def step(self, x, u=None):
            return [list(r) for r in 0.5 * np.asarray(x)]

        def jacobian(self, x, u=None):
            return np.broadcast_to(0.5 * np.eye(2), np.shape(x)[:-1] + (2, 2))

    with pytest.raises(TypeError, match=r"^map: its step returned a list") as info:
        lyapunov_spectrum(ListStep(), np.array([0.1, 0.1]), 20)
    assert "failed on a batch" not in str(info.value)


def test_a_sparse_bias_is_refused_naming_it_and_the_fix():
    import scipy.sparse as sp

    import itermap

    with pytest.raises(TypeError, match=r"bias must be a dense array, got a scipy\.sparse "
                                        r"csr_matrix: pass bias\.toarray\(\)"):
        itermap.IterativeMap(np.eye(5), sp.csr_matrix(np.zeros((1, 5))))


def test_torch_inputs_to_a_numpy_map_are_told_how_to_convert():
    torch = pytest.importorskip("torch")
    import itermap

    m = itermap.IterativeMap.from_mlp([np.ones((3, 2)), np.ones((1, 3))])
    with pytest.raises(TypeError, match=r"inputs is torch; a torch tensor t becomes NumPy by "
                                        r"t\.detach\(\)\.cpu\(\)\.numpy\(\)"):
        itermap.iterate(m, m.zeros(4), 2, inputs=torch.zeros(4, 2, dtype=torch.float64))


def test_a_spec_of_kinds_that_build_their_own_models_needs_no_networks(tmp_path):
    # sequence_models, transformer, zoo and train build their own models: the spec was
    # refused with "networks: missing (required)" (reported by r23-seeds)
    from itermap.analysis._report import SpecError, run_report, validate_spec

    spec = validate_spec({"analyses": [{"kind": "sequence_models"}]})
    assert spec.networks == {}
    doc = run_report(spec, tmp_path / "out", progress=False)
    (section,) = doc["analyses"]
    assert section["kind"] == "sequence_models" and len(section["numbers"]["names"]) == 4
    assert "<h2>Networks</h2>" not in (tmp_path / "out" / "report.html").read_text()
    with pytest.raises(SpecError, match=r"analyses\[0\]\.network: no network named 'rnn' "
                                        r"\(the spec has no \[networks\.NAME\] table\)"):
        validate_spec({"analyses": [{"kind": "lyapunov", "network": "rnn"}]})


def test_a_maps_spectra_table_row_does_not_depend_on_its_place_in_the_list():
    # sweep draws a point's stream from its parameters, and the map's index was one of
    # them: reversing the list moved a chaotic map's row (by 0.035, reported by r23-seeds)
    import itermap
    from itermap.analysis import lyapunov_spectrum, spectra_table

    maps = [itermap.random_rnn(6, gain=g, rng=s) for g, s in ((0.5, 0), (3.0, 1), (2.0, 2))]
    kw = dict(steps=60, transient=5, executor="serial", seed=4)
    one = spectra_table(maps, **kw)
    other = spectra_table([maps[2], maps[0], maps[1], maps[1]], **kw)
    np.testing.assert_array_equal(one.index, [0, 1, 2])
    np.testing.assert_array_equal(other.index, [0, 1, 2, 3])
    for a, b in ((0, 1), (1, 2), (2, 0)):
        np.testing.assert_array_equal(one.raw[a], other.raw[b])
    np.testing.assert_array_equal(other.raw[2], other.raw[3])   # one map listed twice
    # and a row is the map's spectrum (a plain call with its own start), not noise: the
    # contracting map's exponents settle within a few steps
    ref = lyapunov_spectrum(maps[0], np.full(maps[0].dim, 0.3), 400, transient=50).exponents
    np.testing.assert_allclose(one.raw[0][:2], np.asarray(ref)[:2], atol=0.05)
