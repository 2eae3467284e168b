"""Small data sets that ship with itermap: handwritten digits and the 3-bit flip-flop.

Both load without network access: the digits are package data (see
``itermap/data/DIGITS.md`` for provenance and licence) and the flip-flop task
is generated from an explicit ``rng``.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from ._checks import check_int, check_memory, check_real
from ._rng import as_rng

__all__ = ["digits", "flip_flop"]


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    with resources.files("itermap").joinpath("data/digits.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as data:
            return data["pixels"], data["labels"], data["test"]


def digits():
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
    pixels, labels, test = _digits_arrays()
    x = pixels.astype(np.float64) / 16.0
    y = labels.astype(np.int64)
    return x[~test], y[~test], x[test], y[test]


def flip_flop(n: int, steps: int, *, bits: int = 3, p: float = 0.05, rng=None):
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
    >>> import numpy as np
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
    check_memory("n", 8.0 * 4 * steps * n * bits, "the task's arrays")
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
