"""Round 21: defects earlier rounds noticed and left alone (issues 25, 26), each checked
against something independent of the code under test (a long-double loop with the exact
derivatives, a closed form)."""

import json

import numpy as np
import pytest

import itermap
from itermap.analysis._report import run_report
from itermap.analysis._reservoir import _largest_exponents

L = np.longdouble


def _sech_sq(z):
    """tanh'(z) = sech^2 z from e = exp(-2|z|), exact where 1 - tanh^2 z rounds to 0."""
    e = np.exp(-2 * np.abs(z))
    return 4 * e / ((1 + e) * (1 + e))


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_d(a):
    e = np.exp(-np.abs(a))
    return e / ((1 + e) * (1 + e))


# -- 1: the edge-of-chaos scan's tanh' in saturation -------------------------------------

def test_largest_exponent_of_a_saturated_reservoir_matches_a_long_double_loop():
    # rho = 50 with inputs of amplitude 50: about 2/3 of the |z| are past 19.1, where
    # 1 - tanh^2 rounds to 0 (the exponent read -3.127 for -3.114, off by 1.4e-2)
    gen = np.random.default_rng(0)
    n, steps, transient = 100, 500, 200
    mask = gen.random((n, n)) < 0.1
    W = np.where(mask, gen.normal(size=(n, n)), 0.0)
    W /= np.max(np.abs(np.linalg.eigvals(W)))
    w_in = gen.uniform(-1, 1, n)
    u = gen.uniform(-1, 1, steps + transient) * 50.0
    x0 = gen.normal(0, 0.5, n)
    # a = 1: a stable row (a chaotic one's float64 trajectory depends on the rounding order)
    rho, a = np.array([[50.0]]), np.array([[1.0]])
    got = _largest_exponents(W, w_in, u, x0, rho, a, transient)
    # Benettin's loop: the float64 states, the tangent in long double with sech^2 from z
    X = x0[None, :].copy()
    V = np.ones((1, n), dtype=L) / np.sqrt(L(n))
    total = np.zeros(1, dtype=L)
    for t in range(u.size):
        Z = rho * (X @ W.T) + u[t] * w_in
        V = (1 - a.astype(L)) * V + a.astype(L) * _sech_sq(Z.astype(L)) * (
            rho.astype(L) * (V @ W.T.astype(L)))
        X = (1 - a) * X + a * np.tanh(Z)
        norm = np.sqrt((V * V).sum(axis=1))
        V /= norm[:, None]
        if t >= transient:
            total += np.log(norm)
    want = (total / steps).astype(float)
    assert np.abs(got - want).max() < 1e-8, (got, want)


# -- 2: the GRU and LSTM tangents in saturation -------------------------------------------

def _gru_jacobian(Wi, Wh, bi, bh, h, u):
    """d h'/d h of torch's GRU in long double, from the pre-activations."""
    H = h.size
    gi, gh = Wi @ u + bi, Wh @ h + bh
    ar, az = gi[:H] + gh[:H], gi[H:2 * H] + gh[H:2 * H]
    r, z, hn = _sigmoid(ar), _sigmoid(az), gh[2 * H:]
    an = gi[2 * H:] + r * hn
    n = np.tanh(an)
    return ((_sigmoid(-az) * _sech_sq(an))[:, None]
            * ((hn * _sigmoid_d(ar))[:, None] * Wh[:H] + r[:, None] * Wh[2 * H:])
            + ((h - n) * _sigmoid_d(az))[:, None] * Wh[H:2 * H] + np.diag(z))


def _lstm_jacobian(Wi, Wh, bi, bh, hc, u):
    """d [h'; c'] / d [h; c] of torch's LSTM in long double, from the pre-activations."""
    H = hc.size // 2
    h, c0 = hc[:H], hc[H:]
    a = Wi @ u + bi + Wh @ h + bh
    ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    i, f, g, o = _sigmoid(ai), _sigmoid(af), np.tanh(ag), _sigmoid(ao)
    c = f * c0 + i * g
    dc_dh = ((c0 * _sigmoid_d(af))[:, None] * Wh[H:2 * H]
             + (g * _sigmoid_d(ai))[:, None] * Wh[:H]
             + (i * _sech_sq(ag))[:, None] * Wh[2 * H:3 * H])
    dh_dh = (np.tanh(c) * _sigmoid_d(ao))[:, None] * Wh[3 * H:] \
        + (o * _sech_sq(c))[:, None] * dc_dh
    return np.block([[dh_dh, np.diag(o * _sech_sq(c) * f)], [dc_dh, np.diag(f)]])


def _long_double_spectrum(jacobians, transient):
    """Benettin's full spectrum of a product of Jacobians, QR by Gram-Schmidt in long double."""
    d = jacobians[0].shape[0]
    Q, total = np.eye(d, dtype=L), np.zeros(d, dtype=L)
    for t, J in enumerate(jacobians):
        Q = J.astype(L) @ Q
        R = np.zeros(d, dtype=L)
        for j in range(d):
            for i in range(j):
                Q[:, j] -= (Q[:, i] @ Q[:, j]) * Q[:, i]
            R[j] = np.sqrt(Q[:, j] @ Q[:, j])
            Q[:, j] /= R[j]
        if t >= transient:
            total += np.log(R)
    return (total / (len(jacobians) - transient)).astype(float)


@pytest.mark.parametrize("kind, tol", [("gru", 1e-4), ("lstm", 0.3)])
def test_saturated_gated_maps_jacobians_give_the_long_double_spectrum(kind, tol):
    # weights of scale 20: gates and tanh units saturate. The map's float64 Jacobians along
    # a trajectory, multiplied in long double, against the exact Jacobians (from the
    # pre-activations) in long double. Before: 1 - n^2, z (1 - z) read 0 and the spectrum
    # was off by 5.6 (GRU) and 1.9 (LSTM; rounding the exact Jacobians to float64 alone
    # costs its bottom exponent, near -36, 0.14)
    H, I, T, transient = 6, 3, 600, 200
    rng = np.random.default_rng(0)
    G = 3 if kind == "gru" else 4
    Wi = rng.normal(size=(G * H, I)) * 20 / np.sqrt(I)
    Wh = rng.normal(size=(G * H, H)) * 20 / np.sqrt(H)
    bi, bh = rng.normal(size=G * H), rng.normal(size=G * H)
    m = (itermap.GRUMap if kind == "gru" else itermap.LSTMMap)(Wi, Wh, bi, bh)
    exact = _gru_jacobian if kind == "gru" else _lstm_jacobian
    weights = [w.astype(L) for w in (Wi, Wh, bi, bh)]
    us = rng.normal(size=(T, I))
    x = rng.normal(size=m.dim) * 0.5
    ours, want = [], []
    for u in us:
        ours.append(m.jacobian(x, u))
        want.append(exact(*weights, x.astype(L), u.astype(L)))
        x = m.step(x, u)
    got, ref = _long_double_spectrum(ours, transient), _long_double_spectrum(want, transient)
    assert np.all(np.isfinite(got))
    assert np.abs(got - ref).max() < tol, (got, ref)
    # the top exponents, far from the rounding of the entries, to many digits
    assert np.abs(got - ref)[:3].max() < 1e-7


# -- 4: a report's fixed_points section on a map whose sampled trajectories escape ----------

def _report_numbers(tmp_path, m):
    itermap.save(m, tmp_path / "map.npz")
    spec = {"networks": {"m": {"kind": "saved", "path": str(tmp_path / "map.npz")}},
            "analyses": [{"kind": "fixed_points", "network": "m"}]}
    doc = run_report(spec, tmp_path / "report", progress=False)
    assert doc["failed"] == []
    on_disk = json.loads((tmp_path / "report" / "results.json").read_text())
    return on_disk["analyses"][0]


def test_report_fixed_points_of_a_saved_henon_map_are_the_closed_form(tmp_path):
    # standard normal starts leave the Henon map's bounded basin: sample_states raised
    # DivergenceError and the section failed
    a, b = 1.4, 0.3
    section = _report_numbers(tmp_path, itermap.systems.henon(a, b))
    num = section["numbers"]
    xs = (-(1 - b) + np.array([1.0, -1.0]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    # |x*| = |x| sqrt(1 + b^2); Jacobian [[-2 a x, 1], [b, 0]]: lambda = -a x +- sqrt(a^2 x^2 + b)
    norms = np.abs(xs) * np.sqrt(1 + b * b)
    radii = np.abs(-a * xs) + np.sqrt(a * a * xs * xs + b)
    assert num["count"] == 2 and num["stable"] == 0 and num["escaped"] > 0
    order = np.argsort(num["state_norm"])
    np.testing.assert_allclose(np.array(num["state_norm"])[order], np.sort(norms), rtol=1e-12)
    np.testing.assert_allclose(np.array(num["spectral_radius"])[order],
                               radii[np.argsort(norms)], rtol=1e-12)
    assert any("escaped to infinity" in note for note in section["notes"])


def test_report_fixed_points_of_a_saved_logistic_map_are_the_closed_form(tmp_path):
    # x -> r x (1 - x): fixed points 0 and 1 - 1/r, multipliers r and 2 - r
    r = 3.2
    num = _report_numbers(tmp_path, itermap.systems.logistic(r))["numbers"]
    assert num["count"] == 2
    order = np.argsort(num["state_norm"])
    np.testing.assert_allclose(np.array(num["state_norm"])[order], [0.0, 1 - 1 / r],
                               atol=1e-12)
    np.testing.assert_allclose(np.array(num["spectral_radius"])[order], [r, abs(2 - r)],
                               rtol=1e-12)


# -- 3: itermap report --out naming a symbolic link ----------------------------------------

SMALL_SPEC = """
[networks.net]
kind = "random_rnn"
n = 10
gain = 0.5

[[analyses]]
kind = "lyapunov"
network = "net"
steps = 50
k = 2
"""
SPEC_DICT = {"networks": {"net": {"kind": "random_rnn", "n": 10, "gain": 0.5}},
             "analyses": [{"kind": "lyapunov", "network": "net", "steps": 50, "k": 2}]}


def _report_cli(tmp_path, out):
    from itermap.analysis.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC)
    return main(["report", str(spec), "--out", str(out)])


def test_report_out_a_link_to_a_folder_writes_into_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "target").mkdir()
    link = tmp_path / "link"
    link.symlink_to("target")
    for _ in range(2):  # a new report, then one replacing it
        assert _report_cli(tmp_path, link) == 0
        assert link.is_symlink() and link.readlink() == type(link)("target")
        doc = json.loads((tmp_path / "target" / "results.json").read_text())
        assert doc["failed"] == [] and len(doc["analyses"][0]["numbers"]["exponents"]) == 2
    # no temporary or earlier copy left beside either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "spec.toml", "target"]


@pytest.mark.parametrize("target", ["nowhere", "link"], ids=["dangling", "loop"])
def test_report_out_a_dangling_link_is_refused_naming_out(tmp_path, capsys, target):
    # before, the swap replaced the link itself with a folder
    link = tmp_path / "link"
    link.symlink_to(target)
    assert _report_cli(tmp_path, link) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "symbolic link" in err and target in err
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "spec.toml"]
    with pytest.raises(ValueError, match="out"):
        run_report(SPEC_DICT, link, progress=False)


# -- 5: settings refused before anything runs, naming the key -----------------------------

@pytest.mark.parametrize("analysis, key", [
    ({"kind": "continuation", "u_min": 1.0, "u_max": -1.0}, "u_min"),
    ({"kind": "finite_time", "network": "net", "window": 500, "steps": 100}, "window"),
    ({"kind": "zoo", "latent": 7, "k": 6}, "latent"),
    ({"kind": "fixed_points", "network": "net", "period": 10 ** 8}, "period"),
], ids=["continuation", "finite_time", "zoo", "fixed_points_period"])
def test_report_refuses_inconsistent_settings_up_front_naming_the_key(tmp_path, analysis, key):
    # before, the first three ran (the zoo 15 s) and failed in their sections; a long
    # period was refused naming starts, which changed little when lowered
    from itermap.analysis._report import SpecError

    spec = {"networks": SPEC_DICT["networks"], "analyses": [analysis]}
    with pytest.raises(SpecError, match=rf"^analyses\[0\]\.{key}:"):
        run_report(spec, tmp_path / "report", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_report_seed_option_refuses_a_negative_seed_naming_it(tmp_path, capsys):
    from itermap.analysis.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(spec), "--out", str(tmp_path / "r"), "--seed", "-3"])
    assert exc.value.code == 2 and "argument --seed" in capsys.readouterr().err


def test_report_dynamics_of_a_saved_henon_map_draw_escaping_starts_again(tmp_path):
    # the lyapunov, finite_time and covariant_vectors sections failed with DivergenceError
    # when one of their N(0, 0.25) starts left the basin; block_matrix raised AttributeError
    a, b = 1.4, 0.3
    itermap.save(itermap.systems.henon(a, b), tmp_path / "map.npz")
    net = {"h": {"kind": "saved", "path": str(tmp_path / "map.npz")}}
    spec = {"seed": 0, "networks": net, "analyses": [
        {"kind": "lyapunov", "network": "h", "k": 2, "starts": 8},
        {"kind": "finite_time", "network": "h", "steps": 2000},
        {"kind": "covariant_vectors", "network": "h", "k": 2, "steps": 300},
        {"kind": "block_matrix", "network": "h"},
        {"kind": "fixed_points", "network": "h", "period": 2}]}
    doc = run_report(spec, tmp_path / "report", progress=False)
    lyap, finite, _, blocks, period2 = doc["analyses"]
    assert doc["failed"] == [3] and "no weight matrix" in blocks["error"]["message"]
    assert lyap["numbers"]["redrawn_starts"] > 0
    # det J = -b at every point: the exponents sum to ln b; the largest is 0.4192 (Sprott,
    # Chaos and Time-Series Analysis, 2003, table A.1)
    ex = lyap["numbers"]["exponents"]
    assert abs(sum(ex) - np.log(b)) < 1e-9 and abs(ex[0] - 0.4192) < 0.01
    assert abs(sum(finite["numbers"]["mean"]) - np.log(b)) < 1e-9
    # period 2: the two fixed points and the 2-cycle, x^2 - (1 - b) x / a + ((1 - b)^2 - a)
    # / a^2 = 0 (real for 4 a > 3 (1 - b)^2)
    xf = (-(1 - b) + np.array([1.0, -1.0]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    x1, x2 = ((1 - b) + np.array([1.0, -1.0]) * np.sqrt(4 * a - 3 * (1 - b) ** 2)) / (2 * a)
    norms = np.sort(np.r_[np.abs(xf) * np.hypot(1, b), np.hypot(x1, b * x2),
                          np.hypot(x2, b * x1)])
    assert period2["numbers"]["count"] == 4
    np.testing.assert_allclose(np.sort(period2["numbers"]["state_norm"]), norms, rtol=1e-10)


# -- 5: sparse_hidden_width searched one width at a time ------------------------------------

def test_sparse_hidden_width_is_the_largest_width_within_the_target_and_fast():
    from itermap.analysis import sparse_hidden_width

    def count(h, n_in, n_out, p):   # the paper's all-R=p map: weights times p, plus biases
        return p * (h * n_in + h * h + h * n_out + n_out * n_in + n_out * h + n_out ** 2) \
            + h + n_out

    def plain(target, p, n_in=64, n_out=10):
        h = 1
        while count(h + 1, n_in, n_out, p) <= target:
            h += 1
        return h

    for target, p in [(1, 1.0), (10, 0.5), (4810, 1.0), (4810, 0.1), (10 ** 5, 0.01),
                      (123457, 0.37)]:
        assert sparse_hidden_width(target, p) == plain(target, p)
    assert sparse_hidden_width(50, 1.0, n_in=3, n_out=2) == plain(50, 1.0, 3, 2)
    # before: one width a step, about 1e9 steps here
    h = sparse_hidden_width(10 ** 18, 1e-18)
    assert count(h, 64, 10, 1e-18) <= 10 ** 18 < count(h + 1, 64, 10, 1e-18)


def test_compare_sequence_models_names_the_key_of_a_value_that_is_no_map():
    from itermap.analysis import compare_sequence_models

    with pytest.raises(TypeError, match=r"^maps\['a'\]: int object has no step"):
        compare_sequence_models({"a": 3})


def test_tanh_derivative_from_its_output_is_exact_beside_a_nan_and_on_empty_arrays():
    # the shared rule behind the GRU/LSTM tangents: one reduction decides whether any unit
    # saturates; a NaN among them must not hide the others' exact sech^2
    from itermap._maps._activations import _tanh_d_from

    z = np.array([0.5, 30.0, np.nan, -40.0])
    d = _tanh_d_from(np.tanh(z), z, np)
    want = [float(1 / np.cosh(np.longdouble(v)) ** 2) for v in (0.5, 30.0, -40.0)]
    np.testing.assert_allclose(d[[0, 1, 3]], want, rtol=1e-14)
    assert np.isnan(d[2])
    assert _tanh_d_from(np.zeros(0), np.zeros(0), np).shape == (0,)
