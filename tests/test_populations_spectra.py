"""Spectra of many networks and embeddings that predict performance (issue 29, section 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

import itermap
from itermap.analysis import (
    SpectraTable,
    resample_spectrum,
    spectra_table,
    spectrum_embedding,
)
from itermap.systems import linear


# -- resampling ------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=20), st.integers(2, 40))
def test_resampling_keeps_the_ends_and_is_the_identity_at_the_same_length(values, length):
    s = np.sort(np.asarray(values))[::-1]
    np.testing.assert_array_equal(resample_spectrum(s, s.size), s)
    r = resample_spectrum(s, length)
    assert r[0] == s[0] and r[-1] == s[-1]
    assert np.all(np.diff(r) <= 1e-12)                       # still descending
    # a plain loop: linear interpolation at x = j / (length - 1) on nodes i / (n - 1)
    for j, x in enumerate(np.linspace(0, 1, length)):
        i = min(int(np.floor(x * (s.size - 1))), s.size - 2)
        w = x * (s.size - 1) - i
        assert r[j] == pytest.approx((1 - w) * s[i] + w * s[i + 1], abs=1e-12)


def test_a_linear_spectrum_resamples_to_a_linear_spectrum():
    np.testing.assert_allclose(resample_spectrum(-np.arange(5.0), 9), -np.arange(9.0) / 2)
    np.testing.assert_array_equal(resample_spectrum([0.3], 4), [0.3] * 4)


# -- spectra_table ---------------------------------------------------------------------------
def _linear_with_eigenvalues(lams, seed):
    Q = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(lams),) * 2))[0]
    return Q @ np.diag(lams) @ Q.T


def test_linear_maps_give_their_log_eigenvalue_moduli_sorted():
    g = np.random.default_rng(0)
    maps, expected = [], []
    for n in (2, 3, 5, 7):
        # distinct moduli e^{0.2}, e^{-0.1}, ..., random signs, in random order
        lams = g.permutation(np.sign(g.normal(size=n)) * np.exp(0.2 - 0.3 * np.arange(n)))
        maps.append(linear(_linear_with_eigenvalues(lams, n)))
        expected.append(np.sort(np.log(np.abs(lams)))[::-1])
    # a driven linear map [u; h; y]: conditional exponents of h and y (y's rows read h only)
    A = _linear_with_eigenvalues(np.array([0.9, -0.5, 0.2]), 9)
    bm = itermap.BlockMatrix([1, 3, 1], {(1, 0): np.ones((3, 1)), (1, 1): A,
                                         (2, 1): np.ones((1, 3))})
    maps.append(itermap.IterativeMap(bm, activation="identity", input_block=0))
    expected.append(np.array([np.log(0.9), np.log(0.5), np.log(0.2), -np.inf]))
    t = spectra_table(maps, inputs=np.array([0.3]), steps=400, transient=200,
                      executor="serial", seed=0)
    assert isinstance(t, SpectraTable) and t.index.tolist() == list(range(5))
    for raw, want in zip(t.raw, expected):
        np.testing.assert_allclose(raw[np.isfinite(want)], want[np.isfinite(want)], atol=1e-6)
    assert t.spectra.shape == (5, 7)
    floor = np.maximum(expected[-1], t.floor)
    np.testing.assert_allclose(t.spectra[-1], resample_spectrum(floor, 7), atol=1e-6)
    np.testing.assert_allclose(t.spectra[0], resample_spectrum(expected[0], 7), atol=1e-6)


def test_a_table_is_resumable_from_its_cache(tmp_path, monkeypatch):
    import itermap.analysis._spectra_table as mod

    maps = [itermap.random_rnn(n, gain=0.8, rng=n) for n in (3, 4, 5)]
    first = spectra_table(maps, steps=60, transient=10, executor="serial", seed=1,
                          cache=tmp_path)
    calls = []
    real = mod.lyapunov_spectrum

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "lyapunov_spectrum", counting)
    again = spectra_table(maps, steps=60, transient=10, executor="serial", seed=1,
                          cache=tmp_path)
    assert calls == []                                              # all read back
    np.testing.assert_array_equal(first.spectra, again.spectra)
    fresh = spectra_table(maps, steps=60, transient=10, executor="serial", seed=1)
    np.testing.assert_array_equal(first.spectra, fresh.spectra)   # same seed, same table
    assert len(calls) == 3


def test_a_failing_map_is_reported_and_left_out():
    maps = [itermap.random_rnn(3, gain=0.5, rng=0), linear(np.eye(2) * 1e200),
            itermap.random_rnn(4, gain=0.5, rng=1)]
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        t = spectra_table(maps, steps=50, transient=0, executor="serial", seed=0)
    assert t.index.tolist() == [0, 2] and t.failures[0][0] == 1
    assert "Divergence" in t.failures[0][1]


def test_two_workers_give_the_serial_table():
    maps = [itermap.random_rnn(6, gain=g, rng=i) for i, g in enumerate((0.5, 1.5, 2.5, 3.0))]
    a = spectra_table(maps, steps=80, transient=20, executor="serial", seed=3)
    b = spectra_table(maps, steps=80, transient=20, executor=2, seed=3)
    np.testing.assert_allclose(a.spectra, b.spectra, rtol=1e-12, atol=1e-12)


def test_each_point_carries_its_map_as_one_string(monkeypatch):
    """A map travels pickled in its point as one base64 string, not a byte array: sweep
    hashes an array's entries one by one in the calling process, before any point runs."""
    import base64
    import pickle

    from itermap.analysis import _spectra_table as mod

    grids = []
    real = mod.sweep

    def recording(fn, grid, **kw):
        grids.append(grid)
        return real(fn, grid, **kw)

    monkeypatch.setattr(mod, "sweep", recording)
    maps = [itermap.random_rnn(n, gain=0.5, rng=n) for n in (3, 5)]
    t = spectra_table(maps, steps=30, transient=5, executor="serial", seed=1)
    for point, m in zip(grids[0], maps):
        assert isinstance(point["blob"], str)
        back = pickle.loads(base64.b64decode(point["blob"]))
        x = np.linspace(-1.0, 1.0, m.dim)
        np.testing.assert_array_equal(back.step(x), m.step(x))
    # the spectra are the maps' own: a linear map's log-eigenvalue moduli, through the blob
    t = spectra_table([linear(np.diag([0.5, 2.0]))], steps=20, executor="serial", seed=0)
    np.testing.assert_allclose(t.spectra[0], np.log([2.0, 0.5]), atol=1e-12)


# -- spectrum_embedding ----------------------------------------------------------------------
def _low_rank_rows(seed, n=60):
    g = np.random.default_rng(seed)
    Q = np.linalg.qr(g.normal(size=(8, 8)))[0]
    return g.normal(size=(n, 8)) @ np.diag([3, 2, 1.5, 0.5, 0.3, 0.2, 0.1, 0.05]) @ Q


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("latent", [1, 2, 3])
def test_a_linear_autoencoder_reaches_the_pca_error(seed, latent):
    X = _low_rank_rows(seed)
    p = spectrum_embedding(X, X[:, 0], latent=latent, rng=seed)
    a = spectrum_embedding(X, X[:, 0], method="autoencoder", activation="identity", alpha=0.0,
                           latent=latent, rng=seed)
    # PCA's error in closed form: the discarded singular values of the centred rows
    Xt = X[p.train] - X[p.train].mean(axis=0)
    s = np.linalg.svd(Xt, compute_uv=False)
    assert p.reconstruction_error == pytest.approx(np.sum(s[latent:] ** 2) / Xt.size)
    # Baldi and Hornik: the linear autoencoder's optimum is PCA's (never below it)
    assert p.reconstruction_error * (1 - 1e-9) <= a.reconstruction_error
    assert a.reconstruction_error <= p.reconstruction_error * 1.005


def test_held_out_quality_is_r2_and_spearman_on_the_held_out_rows():
    X = _low_rank_rows(4, n=80)
    y = X @ np.random.default_rng(4).normal(size=8)
    e = spectrum_embedding(X, y, latent=8, rng=0)
    assert e.r2 == pytest.approx(1.0) and e.spearman == pytest.approx(1.0)
    assert sorted(np.concatenate([e.train, e.test]).tolist()) == list(range(80))
    assert len(e.test) == 20
    noise = spectrum_embedding(X, np.random.default_rng(5).normal(size=80), latent=2, rng=0)
    t = noise.test
    r2 = 1 - np.sum((noise.targets[t] - noise.predicted[t]) ** 2) / np.sum(
        (noise.targets[t] - noise.targets[t].mean()) ** 2)
    assert noise.r2 == pytest.approx(r2) and noise.r2 < 0.2
    assert noise.spearman == pytest.approx(spearmanr(noise.predicted[t], noise.targets[t])[0])


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_spectra_predict_the_gain_of_held_out_networks(method):
    gains = np.linspace(0.3, 0.95, 28)
    maps = [itermap.random_rnn(8, gain=g, rng=i) for i, g in enumerate(gains)]
    t = spectra_table(maps, steps=100, transient=50, executor="serial", seed=0)
    e = spectrum_embedding(t, gains, method=method, latent=2, rng=0, epochs=1500)
    assert e.r2 > 0.5 and e.spearman > 0.7


def test_embedding_arguments_are_checked():
    X = _low_rank_rows(0, n=20)
    with pytest.raises(ValueError, match="targets"):
        spectrum_embedding(X, np.zeros(19))
    with pytest.raises(ValueError, match="latent"):
        spectrum_embedding(X, X[:, 0], latent=9)
    with pytest.raises(ValueError, match="test_fraction"):
        spectrum_embedding(X[:5], X[:5, 0])
    with pytest.raises(ValueError, match="targets"):
        spectrum_embedding(X, np.ones(20))
    with pytest.raises(ValueError, match="method"):
        spectrum_embedding(X, X[:, 0], method="tsne")


def test_the_embedding_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = _low_rank_rows(1)
    e = spectrum_embedding(X, X[:, 0], latent=2, rng=0)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    assert e.plot(axes[0]) is axes[0]
    assert len(axes[0].collections) == 2
    ax = e.plot()
    fig.savefig(tmp_path / "two.png")
    ax.figure.savefig(tmp_path / "one.png")
    plt.close("all")


def test_embeddings_repeat_bit_for_bit_from_a_seed():
    X = _low_rank_rows(2, n=30)
    for method in ("pca", "autoencoder"):
        a = spectrum_embedding(X, X[:, 1], method=method, rng=4, epochs=50)
        b = spectrum_embedding(X, X[:, 1], method=method, rng=np.random.default_rng(4),
                               epochs=50)
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.test, b.test)
        assert not np.array_equal(a.test, spectrum_embedding(X, X[:, 1], method=method, rng=5,
                                                             epochs=50).test)
    with pytest.raises(TypeError, match="rng"):
        spectrum_embedding(X, X[:, 1], rng="not a seed")
