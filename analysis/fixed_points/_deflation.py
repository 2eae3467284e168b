"""Deflation of known solutions (Farrell, Birkisson and Funke, SIAM J. Sci. Comput. 2015).

Newton on the deflated residual ``M(x) G(x)``, with the deflation operator
``M(x) = prod_j (1 + (r / ||x - p_j||)^2)`` over the points ``p_j`` already found,
cannot converge to any ``p_j`` (``M`` blows up there), while every other zero of
``G`` is a zero of ``M G``. Its Newton step is the undeflated one rescaled, so a
deflated solver needs no new linear solve (their eq. 3.3, by Sherman-Morrison):
``dx_deflated = tau dx`` with ``tau = 1 / (1 - grad(log M) . dx)``.

``r`` is the radius within which a known point repels (``r / ||x - p||`` is
their ``||x - p||^{-p}`` with ``p = 2`` and shift ``sigma = 1``, in the state's
own units).
"""

from __future__ import annotations

import numpy as np


def log_deflation(x, points, radius):
    """``(log M(x), grad log M(x))`` for rows ``x`` (k, n) and known ``points`` (m, n).

    Host NumPy, float64; ``M = 1`` (log 0, gradient 0) where there are no points.
    """
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[0]
    if points is None or len(points) == 0:
        return np.zeros(k), np.zeros_like(x)
    P = np.asarray(points, dtype=np.float64)
    diff = x[:, None, :] - P[None, :, :] if P.shape[0] * k * x.shape[1] <= 2 ** 24 else None
    if diff is None:        # many points: distances through one matmul, gradient by rows
        d2 = (np.sum(x * x, 1)[:, None] + np.sum(P * P, 1)[None, :] - 2.0 * x @ P.T)
        d2 = np.maximum(d2, 1e-300)
    else:
        d2 = np.maximum(np.einsum("kmn,kmn->km", diff, diff), 1e-300)
    r2 = radius * radius
    logm = np.sum(np.log1p(r2 / d2), axis=1)
    # d/dx log(1 + r^2/d2) = -2 r^2 (x - p) / (d2 (d2 + r^2))
    w = -2.0 * r2 / (d2 * (d2 + r2))                     # (k, m)
    grad = w.sum(axis=1)[:, None] * x - w @ P
    return logm, grad


def deflated_step(dx, grad_logm):
    """The deflated Newton step ``tau dx`` from the undeflated ``dx`` (rows).

    ``tau = 1 / (1 - grad(log M) . dx)``; where the denominator is not positive
    (the step heads into a known point faster than it reaches a zero) the step is
    reversed in sign by the formula, which is what deflation asks for; where it is
    near zero the step is left undeflated (``tau`` is capped at 1e3 in modulus).
    """
    s = np.einsum("kn,kn->k", np.asarray(dx, dtype=np.float64), grad_logm)
    den = 1.0 - s
    tau = np.where(np.abs(den) > 1e-3, 1.0 / np.where(den == 0, 1.0, den), 1.0)
    return tau
