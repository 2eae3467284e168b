"""Slow points: local minima of ``q(x) = 1/2 ||F^p(x) - x||^2`` that are not zeros.

Sussillo and Barak's slow points (ghosts of fixed points, points on line
attractors) are where the dynamics is slow without being still; the q method
(``method="q"`` or ``slow_points=True``) ends its starts there. This module
merges the minima found by the batches of starts and linearises the map there.

References
----------
.. [1] D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics
   in high-dimensional recurrent neural networks", Neural Computation 25(3), 2013.
.. [2] M. D. Golub and D. Sussillo, "FixedPointFinder: a TensorFlow toolbox for
   identifying and characterizing fixed points in recurrent neural networks",
   JOSS 3(31), 2018.
"""

from __future__ import annotations

import numpy as np

from ._clustering import _cluster
from ._common import _eigenvalues, _like, _take


def slow_point_fields(F, xp, slow_x, slow_r, unique_tol, dim, dtype):
    """The slow-point fields of :class:`FixedPoints` from the minima the batches found
    (lists of device arrays and host residuals): one point per group within
    ``unique_tol``, with ``||G||``, ``q`` and the eigenvalues of ``D(F^p)`` there."""
    if slow_x:
        sx = xp.concat(slow_x, axis=0)
        sr = np.concatenate(slow_r)
        if F.torus is not None:  # one representative on the torus, as the points have
            sx = F.torus.canonical(sx, unique_tol)
        lead, _ = _cluster(xp, sx, unique_tol)
        heads = np.unique(lead)
        sx, sr = _take(xp, sx, heads), sr[heads]
        _, sj = F.jacobian(sx)
        sev = _eigenvalues(xp, sj)
    else:
        sx, sr = xp.zeros((0, dim), dtype=dtype), np.zeros(0)
        sev = np.zeros((0, dim), dtype=np.complex128)
    return {"slow_points": sx, "slow_residuals": _like(sr, xp),
            "slow_eigenvalues": sev, "slow_q": _like(0.5 * sr * sr, xp)}
