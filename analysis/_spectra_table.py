"""Lyapunov spectra of many networks, and embeddings that predict performance (AeLLE,
Vogt et al., arXiv 2204.04876)."""

from __future__ import annotations

import base64
import functools
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import itermap
from itermap import saveable
from itermap.backends import to_numpy

from ._checks import (
    check_choice,
    check_int,
    check_memory,
    check_real,
    check_real_array,
    check_states,
    one_namespace,
    state_units,
)
from ._sweep import sweep
from .lyapunov import lyapunov_spectrum

__all__ = ["SpectraTable", "SpectrumEmbedding", "resample_spectrum", "spectra_table",
           "spectrum_embedding"]


def resample_spectrum(spectrum: Any, length: int) -> np.ndarray:
    """A sorted spectrum resampled to ``length`` values on the normalised index.

    Exponent ``i`` of ``n`` sits at ``i / (n - 1)``; the result interpolates linearly at
    ``length`` equally spaced points (the extremes kept; ``length=1``: the largest).

    Parameters
    ----------
    spectrum : array of shape (n,)
        Exponents, finite, in any order (sorted descending here).
    length : int
        The number of values (>= 1).

    Returns
    -------
    ndarray of shape (length,)

    Raises
    ------
    ValueError
        An empty, non-finite or multi-dimensional spectrum.

    References
    ----------
    .. [1] R. Vogt, M. Puelma Touzel, E. Shlizerman, G. Lajoie, "On Lyapunov
       exponents for RNNs: understanding information propagation using
       dynamical systems tools", Front. Appl. Math. Stat. 8 (2022),
       arXiv:2006.14123.
    .. [2] R. Vogt, Y. Zheng, E. Shlizerman, "Lyapunov-guided representation of
       recurrent neural network performance", arXiv:2204.04876 (2022).

    Examples
    --------
    >>> from itermap.analysis import resample_spectrum
    >>> resample_spectrum([0.0, -1.0, -2.0], 5)
    array([ 0. , -0.5, -1. , -1.5, -2. ])
    """
    if hasattr(spectrum, "exponents"):  # a result, not its exponents
        raise TypeError(f"spectrum must be an array of exponents, got a "
                        f"{type(spectrum).__name__}: pass its .exponents")
    s = -np.sort(-check_real_array("spectrum", spectrum, ndim=1))
    length = check_int("length", length, 1)
    check_memory("length", 16 * length, "the resampled spectrum")
    if s.size == 0:
        raise ValueError("spectrum must hold at least one exponent")
    if s.size == 1:
        return np.full(length, float(s[0]))
    if length == 1:
        return s[:1].copy()
    # the same formula for nodes and query points, so equal lengths give back s exactly
    x = np.arange(s.size) / (s.size - 1)
    return np.interp(np.arange(length) / (length - 1), x, s)


def _spectrum_point(inputs, k, steps, transient, x0, blob, rng):
    """One map's spectrum (a sweep point): exponents descending."""
    m = pickle.loads(base64.b64decode(blob))  # our own bytes, made by spectra_table
    # x0 "random", None (the origin) or one start; zero on a driven map's input block
    start = rng.normal(size=m.dim) if isinstance(x0, str) else np.zeros(m.dim) if x0 is None \
        else x0
    start = np.where(state_units(m), start, 0.0)
    kk = None if k is None else min(k, m.dim - m.forced_size)
    res = lyapunov_spectrum(m, start, steps, k=kk, transient=transient,
                            inputs=inputs if m.input_size else None, rng=rng)
    return {"exponents": np.asarray(to_numpy(res.exponents), dtype=float)}


@saveable
@dataclass(frozen=True)
class SpectraTable(itermap.Result):
    """The Lyapunov spectra of many maps, resampled to one length.

    Attributes
    ----------
    spectra : ndarray of shape (n_ok, length)
        Row ``r``: the spectrum of ``maps[index[r]]``, descending, with exponents
        below ``floor`` (``-inf`` included) raised to it, resampled by
        :func:`resample_spectrum`.
    raw : list of ndarray
        The spectra as computed (with ``-inf`` where a direction collapsed).
    index : ndarray of int
        Which maps the rows are (failed maps are left out).
    failures : list of (int, str)
        Maps whose spectrum failed (a divergence, say), with the error.
    floor : float
        The value that stands for ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.systems import linear
    >>> from itermap.analysis import spectra_table
    >>> t = spectra_table([linear(np.diag([0.5, 2.0]))], steps=20, executor="serial", seed=0)
    >>> np.round(t.spectra, 6)
    array([[ 0.693147, -0.693147]])
    """

    _table: ClassVar[tuple[str, ...]] = ("index", "spectra")
    _schema: ClassVar[dict[str, str]] = {
        "spectra": "float[N, L]", "raw": "list[float[*]]", "index": "int[N]",
        "failures": "list", "floor": "float"}

    spectra: np.ndarray
    raw: list
    index: np.ndarray
    failures: list
    floor: float


def _check_maps(maps):
    if isinstance(maps, str | bytes) or not isinstance(maps, Sequence) or not maps:
        raise TypeError(f"maps must be a non-empty list of maps, got {type(maps).__name__}")
    out = []
    for i, m in enumerate(maps):
        try:
            out.append(itermap.as_map(m))
        except TypeError as exc:
            raise TypeError(f"maps[{i}]: {exc}") from None
    return tuple(out)


def _check_inputs(maps, inputs):
    inputs = check_real_array("inputs", inputs)
    # input_size (the protocol's): a GRU or LSTM map is driven without an input block
    n_in = {m.input_size for m in maps if m.input_size}
    if not n_in:
        raise ValueError("inputs were given, but no map in maps is driven")
    if len(n_in) > 1:
        raise ValueError(f"inputs: the driven maps take inputs of sizes {sorted(n_in)}; one "
                         f"inputs array needs one size")
    if inputs.ndim not in (1, 2) or inputs.shape[-1] != n_in.pop() or inputs.shape[0] == 0:
        raise ValueError(f"inputs must have shape (n_in,) or (transient + steps, n_in) with the "
                         f"maps' n_in, got {inputs.shape}")
    return inputs


def spectra_table(maps: Sequence[Any], *, inputs: Any = None, k: int | None = None,
                  steps: int = 500, transient: int = 100, length: int | None = None,
                  x0: Any = "random", floor: float = -30.0, executor: Any = None,
                  seed: Any = None, cache: str | os.PathLike | None = None,
                  progress: bool = False) -> SpectraTable:
    """The Lyapunov spectra of many networks, through :func:`sweep`, on one length.

    Each map's spectrum is one point of a sweep (a pool or cluster runs them; with
    ``cache`` a stopped run resumes).

    Parameters
    ----------
    maps : list of maps
        The networks (any sizes).
    inputs : array, optional
        The drive, as :func:`lyapunov_spectrum` takes it: one input ``(n_in,)``
        held constant or a sequence ``(transient + steps, n_in)``, the same for
        every driven map (autonomous maps in the list run without it).
    k : int, optional
        The top ``k`` exponents (capped at each map's dimension); default all.
    steps, transient : int
        Measured and discarded steps.
    length : int, optional
        Length of the resampled spectra; default the longest spectrum.
    x0 : "random", None or array
        The start: a standard normal state drawn from the point's stream, the
        zero state, or one state for every map (all of one dimension).
    floor : float
        The least exponent in ``spectra``: lower ones, and the ``-inf`` of collapsed
        directions, are raised to it (``raw`` keeps them).
    executor, seed, cache, progress
        As in :func:`sweep`; ``cache`` needs ``seed``.

    Returns
    -------
    SpectraTable

    Raises
    ------
    TypeError
        ``maps`` not a list of maps, options of the wrong type.
    ValueError
        Options out of range, every map failing.

    References
    ----------
    .. [1] R. Vogt, Y. Zheng, E. Shlizerman, "Lyapunov-guided representation of
       recurrent neural network performance", arXiv:2204.04876 (2022).
    .. [2] G. Benettin, L. Galgani, A. Giorgilli, J.-M. Strelcyn, Meccanica 15,
       9 (1980).

    Examples
    --------
    >>> import itermap
    >>> from itermap.analysis import spectra_table
    >>> maps = [itermap.random_rnn(n, gain=0.5, rng=n) for n in (4, 6)]
    >>> t = spectra_table(maps, steps=50, transient=10, executor="serial", seed=0)
    >>> t.spectra.shape, bool((t.spectra < 0).all())
    ((2, 6), True)
    """
    maps = _check_maps(maps)
    k = None if k is None else check_int("k", k, 1)
    steps, transient = check_int("steps", steps, 1), check_int("transient", transient, 0)
    length = None if length is None else check_int("length", length, 1)
    floor = check_real("floor", floor)
    if not (x0 is None or (isinstance(x0, str) and x0 == "random")):
        if isinstance(x0, str):
            raise ValueError(f"x0 must be 'random', None or an array, got {x0!r}")
        x0 = check_states("x0", x0, ndim=1)
        if any(m.dim != x0.size for m in maps):
            raise ValueError(f"x0 has {x0.size} entries, but not every map has that dimension")
    inputs = None if inputs is None else _check_inputs(maps, inputs)
    fn = functools.partial(_spectrum_point, inputs, k, steps, transient, x0)
    # each point carries its map as a base64 string of pickled bytes: a worker gets one
    # map, the cache keys it by content, and sweep hashes a string at once. The point is
    # the map alone, not its place in the list: sweep draws a point's stream from its
    # parameters, so a map's row does not change when the list is reordered or grows
    # (and a map listed twice is run once)
    blobs = [base64.b64encode(pickle.dumps(m)).decode("ascii") for m in maps]
    at: dict[str, list[int]] = {}
    for i, b in enumerate(blobs):
        at.setdefault(b, []).append(i)
    res = sweep(fn, [{"blob": b} for b in at], executor=executor, seed=seed, cache=cache,
                progress=progress)
    failures = sorted((i, f"{f.error}: {f.message}") for f in res.failures
                      for i in at[f.params["blob"]])
    if not res.records:
        raise ValueError(f"maps: every spectrum failed, e.g. {failures[0][1]}")
    done = {r["blob"]: np.asarray(r["exponents"], dtype=float) for r in res.records}
    index = np.asarray([i for i, b in enumerate(blobs) if b in done], dtype=np.int64)
    raw = [done[blobs[i]] for i in index]
    length = max(s.size for s in raw) if length is None else length
    spectra = np.stack([resample_spectrum(np.maximum(s, floor), length) for s in raw])
    return SpectraTable(spectra, raw, index, failures, floor)


@saveable
@dataclass(frozen=True)
class SpectrumEmbedding(itermap.Result):
    """Latent codes of spectra and how well they predict a target on held-out rows.

    Attributes
    ----------
    codes : ndarray of shape (N, latent)
        The latent code of every row of the table.
    predicted : ndarray of shape (N,)
        The predictor's output for every row (fitted on the training rows).
    targets : ndarray of shape (N,)
        The targets (e.g. test accuracies).
    train, test : ndarray of int
        The rows fitted and the rows held out.
    r2 : float
        Held-out coefficient of determination ``1 - SS_res / SS_tot`` (> 0 beats the
        held-out mean).
    spearman : float
        Held-out Spearman rank correlation; NaN when those predictions are all equal.
    reconstruction_error, test_reconstruction_error : float
        Mean squared reconstruction error per entry, training and held-out rows.
    method : str
        ``"pca"`` or ``"autoencoder"``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import spectrum_embedding
    >>> g = np.random.default_rng(0)
    >>> X = g.normal(size=(40, 6))
    >>> e = spectrum_embedding(X, X[:, 0] + 0.01 * g.normal(size=40), latent=6, rng=0)
    >>> bool(e.r2 > 0.99)
    True
    """

    _schema: ClassVar[dict[str, str]] = {
        "codes": "float[N, *]", "predicted": "float[N]", "targets": "float[N]",
        "train": "int[*]", "test": "int[*]", "r2": "float", "spearman": "float",
        "reconstruction_error": "float", "test_reconstruction_error": "float", "method": "str"}

    codes: np.ndarray
    predicted: np.ndarray
    targets: np.ndarray
    train: np.ndarray
    test: np.ndarray
    r2: float
    spearman: float
    reconstruction_error: float
    test_reconstruction_error: float
    method: str

    def plot(self, ax: Any = None) -> Any:
        """Predicted against true targets, held-out rows filled (returns the Axes).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure when omitted.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        y, p = self.targets, self.predicted
        ax.scatter(y[self.train], p[self.train], s=12, facecolors="none",
                   edgecolors="0.6", label="training")
        ax.scatter(y[self.test], p[self.test], s=14, color="C0", label="held out")
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
        ax.set(xlabel="target", ylabel="predicted from the spectrum")
        ax.set_title(f"{self.method}: held-out $R^2$ = {self.r2:.2f}, "
                     f"$\\rho$ = {self.spearman:.2f}")
        ax.legend(frameon=False)
        return ax


def _pca(X, tr, latent):
    mu = X[tr].mean(axis=0)
    _, _, Vt = np.linalg.svd(X[tr] - mu, full_matrices=False)
    V = Vt[:latent].T
    codes = (X - mu) @ V
    return codes, codes @ V.T + mu


# the encoder's nonlinearity and derivative: the library's tanh' is sech^2 where 1 - tanh^2
# rounds to 0 (|a| > 19), so a saturated unit still passes its (tiny) gradient to Adam
_ENCODER = {"tanh": (np.tanh, lambda a: itermap.ACTIVATIONS["tanh"].derivative(a, np)),
            "identity": (lambda a: a, np.ones_like)}


def _adam_autoencoder(X, ys, tr, latent, activation, alpha, epochs, lr, gen):
    """Full-batch Adam on reconstruction + alpha * prediction loss (train rows)."""
    mu = X[tr].mean(axis=0)
    Xt, yt = X[tr] - mu, ys[tr]
    n, d = Xt.shape
    act, dact = _ENCODER[activation]
    params = [gen.normal(0.0, 1.0 / np.sqrt(d), size=(d, latent)), np.zeros(latent),
              gen.normal(0.0, 1.0 / np.sqrt(latent), size=(latent, d)), np.zeros(d),
              gen.normal(0.0, 1.0 / np.sqrt(latent), size=latent), np.zeros(())]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    for t in range(1, epochs + 1):
        W1, b1, W2, b2, w, c = params
        A = Xt @ W1 + b1
        Z = act(A)
        dX = 2.0 * (Z @ W2 + b2 - Xt) / (n * d)
        dy = 2.0 * alpha * (Z @ w + c - yt) / n
        dZ = (dX @ W2.T + dy[:, None] * w[None]) * dact(A)
        grads = [Xt.T @ dZ, dZ.sum(0), Z.T @ dX, dX.sum(0), Z.T @ dy, dy.sum()]
        for i, g in enumerate(grads):
            m1[i] = 0.9 * m1[i] + 0.1 * g
            m2[i] = 0.999 * m2[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m1[i] / (1 - 0.9 ** t)) / (
                np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-12)
    W1, b1, W2, b2, w, c = params
    codes = act((X - mu) @ W1 + b1)
    return codes, codes @ W2 + b2 + mu, codes @ w + c


def _split(n, test_fraction, gen, latent):
    n_test = int(round(test_fraction * n))
    if n_test < 3 or n - n_test < latent + 2:
        raise ValueError(f"test_fraction: {n} rows give {n_test} held-out and {n - n_test} "
                         f"training rows; need >= 3 held out and >= latent + 2 = "
                         f"{latent + 2} for training")
    order = gen.permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def spectrum_embedding(table: Any, targets: Any, *, method: str = "pca", latent: int = 2,
                       test_fraction: float = 0.25, activation: str = "tanh",
                       alpha: float = 1.0, epochs: int = 3000, lr: float = 1e-2,
                       rng: Any = None) -> SpectrumEmbedding:
    """Embed spectra in a few latent dimensions and predict a target from the codes.

    ``"pca"``: the top principal components of the training rows and a least-squares
    predictor; ``"autoencoder"``: AeLLE's encoder ``z = act(W1 (x - mean) + b1)``, linear
    decoder and predictor trained together by Adam on ``MSE(reconstruction) + alpha *
    MSE(prediction)``. The quality is measured on random held-out rows.

    Parameters
    ----------
    table : SpectraTable or array of shape (N, L)
        The spectra (a table's ``spectra``), or any feature rows.
    targets : array of shape (N,)
        What to predict, e.g. test accuracy.
    method : {"pca", "autoencoder"}
    latent : int
        Latent dimensions (<= L).
    test_fraction : float
        Fraction of rows held out, in (0, 1).
    activation : {"tanh", "identity"}
        The encoder's nonlinearity (``"identity"`` with ``alpha=0``: PCA's subspace).
    alpha : float
        Weight of the prediction loss (>= 0; autoencoder).
    epochs : int
        Adam steps (autoencoder).
    lr : float
        Adam's learning rate (autoencoder).
    rng : int, Generator or None
        The split and the initial weights.

    Returns
    -------
    SpectrumEmbedding

    Raises
    ------
    ValueError
        Rows and targets that disagree, non-finite values, too few rows for the
        split, ``latent`` above the features, equal held-out targets (R^2 is
        then undefined).
    TypeError
        Arguments of the wrong type.

    References
    ----------
    .. [1] R. Vogt, Y. Zheng, E. Shlizerman, "Lyapunov-guided representation of
       recurrent neural network performance", arXiv:2204.04876 (2022).
    .. [2] P. Baldi, K. Hornik, "Neural networks and principal component
       analysis: learning from examples without local minima", Neural Networks
       2, 53 (1989).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import spectrum_embedding
    >>> g = np.random.default_rng(1)
    >>> X = g.normal(size=(30, 4)) @ np.diag([3.0, 1.0, 0.1, 0.1])
    >>> e = spectrum_embedding(X, X[:, 0], latent=1, rng=0)
    >>> e.codes.shape, bool(e.r2 > 0.95)
    ((30, 1), True)
    """
    from scipy.stats import spearmanr

    X = table.spectra if isinstance(table, SpectraTable) else table
    one_namespace(table=X, targets=targets)
    X = check_real_array("table", X, ndim=2)
    y = check_real_array("targets", targets, ndim=1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"targets has {y.shape[0]} values for {X.shape[0]} rows of table")
    method = check_choice("method", method, ("pca", "autoencoder"))
    latent = check_int("latent", latent, 1)
    if latent > X.shape[1]:
        raise ValueError(f"latent must be <= the {X.shape[1]} features, got {latent}")
    test_fraction = check_real("test_fraction", test_fraction, positive=True, maximum=0.99)
    activation = check_choice("activation", activation, ("tanh", "identity"))
    alpha = check_real("alpha", alpha, minimum=0.0)
    epochs, lr = check_int("epochs", epochs, 1), check_real("lr", lr, positive=True)
    gen = itermap.as_rng(rng)
    tr, te = _split(X.shape[0], test_fraction, gen, latent)
    if np.all(y[te] == y[te][0]):
        raise ValueError("targets: the held-out targets are all equal, so R^2 is undefined")
    if method == "pca":
        codes, recon = _pca(X, tr, latent)
        design = np.column_stack([codes, np.ones(len(codes))])
        coef = np.linalg.lstsq(design[tr], y[tr], rcond=None)[0]
        pred = design @ coef
    else:
        scale = y[tr].std() or 1.0
        codes, recon, ps = _adam_autoencoder(X, (y - y[tr].mean()) / scale, tr, latent,
                                             activation, alpha, epochs, lr, gen)
        pred = ps * scale + y[tr].mean()
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(recon))):
        raise ValueError("lr: the autoencoder diverged; lower lr")
    ss_tot = np.sum((y[te] - y[te].mean()) ** 2)
    r2 = float(1.0 - np.sum((y[te] - pred[te]) ** 2) / ss_tot)
    rho = float("nan") if np.all(pred[te] == pred[te][0]) else float(
        spearmanr(pred[te], y[te])[0])
    err = (recon - X) ** 2
    return SpectrumEmbedding(codes, pred, y, tr, te, r2, rho, float(err[tr].mean()),
                             float(err[te].mean()), method)
