"""Central-difference tangents for maps given without a Jacobian
(``FunctionMap(step, dim, jacobian="central")``).

``J(x) v ~ (F(x + h v) - F(x - h v)) / (2 h)`` with an error of order ``h^2`` from
truncation and ``eps / h`` from rounding, balanced at ``h ~ eps^(1/3)`` relative to the
state's scale (Nocedal and Wright 2006, sec. 8.1): about ``1e-10`` relative in float64
for a map with bounded third derivatives. The scale is each coordinate's own,
``max(1, |x_j|)``: ``h v`` moves no coordinate by more than ``eps^(1/3)`` of it, so states
of 1e6 and of 1 side by side are both differenced at their scale. The floor of 1 is
what a state alone can tell: a map whose features are 1e-6 wide (not a unit-scale map at a
state near 0) needs its states rescaled, or a Jacobian given. All ``2 k`` evaluations of
``k`` directions at ``B`` states are one batched call of ``step``.

References
----------
.. [1] J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer 2006,
   sec. 8.1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._core._backend import namespace

__all__ = ["FINITE_DIFFERENCES", "central_tangent", "modulo_periods", "period_table"]

#: the ``jacobian`` strings :class:`~itermap.FunctionMap` accepts
FINITE_DIFFERENCES = ("central",)


def period_table(periods: tuple | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(wraps, period)`` per coordinate for :func:`modulo_periods` (a coordinate whose
    period is None does not wrap), or None where the map has no periods."""
    if periods is None:
        return None
    return (np.array([P is not None for P in periods]),
            np.array([1.0 if P is None else float(P) for P in periods]))


def modulo_periods(diff, table: tuple[np.ndarray, np.ndarray] | None):
    """Differences of states (last axis: coordinates) taken modulo the periods of
    ``table`` (:func:`period_table`), so a step that wraps its states onto a torus is
    differenced across the seam as a small difference, not a period."""
    if table is None:
        return diff
    xp = namespace(diff)
    wraps, period = table
    P = xp.asarray(period, dtype=diff.dtype)
    return diff - xp.asarray(wraps) * (P * xp.round(diff / P))


def central_tangent(step: Callable, takes_u: bool, periods: tuple | None) -> Callable:
    """``tangent(x, v)`` (or ``tangent(x, v, u)`` where ``step`` takes an input) by
    central differences of ``step``; a coordinate with a period has its differences
    taken modulo the period (a step that wraps its states)."""
    table = period_table(periods)

    def tangent(x, v, u=None):
        xp = namespace(x)
        one = x.ndim == 1
        X, V = (x[None, :], v[None, ...]) if one else (x, v)
        B, dim, k = V.shape
        # the step along each direction: the largest h that moves no coordinate j by more
        # than eps^(1/3) max(1, |x_j|), its own scale (one scale for the whole state took
        # steps of 6 in a unit-scale coordinate beside one of 1e6); a zero direction stays 0
        cube_root_eps = float(np.finfo(np.dtype(X.dtype)).eps) ** (1 / 3)
        inv_scale = 1.0 / xp.maximum(xp.abs(X), xp.ones_like(X))              # (B, dim)
        size = xp.max(xp.abs(V) * inv_scale[:, :, None], axis=1)             # (B, k)
        h = cube_root_eps / xp.where(size > 0, size, xp.ones_like(size))
        D = xp.permute_dims(V, (0, 2, 1)) * h[..., None]                     # (B, k, dim)
        pts = xp.concat([X[:, None, :] + D, X[:, None, :] - D], axis=1)     # (B, 2k, dim)
        pts = xp.reshape(pts, (B * 2 * k, dim))
        if u is None:
            Y = step(pts)
        else:
            U = u[None, :] if u.ndim == 1 else u
            U = xp.reshape(xp.broadcast_to(U[:, None, :], (B, 2 * k, U.shape[-1])),
                           (B * 2 * k, U.shape[-1]))
            Y = step(pts, U)
        Y = xp.reshape(xp.asarray(Y), (B, 2, k, dim))
        diff = modulo_periods(Y[:, 0] - Y[:, 1], table)   # a step that wraps
        out = xp.permute_dims(diff / (2.0 * h[..., None]), (0, 2, 1))        # (B, dim, k)
        return out[0] if one else out

    if takes_u:
        return tangent
    return lambda x, v: tangent(x, v)
