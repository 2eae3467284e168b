"""Reservoirs as maps: the effective spectral radius of a leaky network (Jaeger 2007)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

import itermap
from itermap.backends import is_sparse, to_numpy

from ._checks import check_choice

__all__ = ["effective_spectral_radius"]

# from this size on a sparse matrix's largest eigenvalue comes from ARPACK, not a dense solve
_ARNOLDI_DIM = 400


def effective_spectral_radius(map: Any, *, leak: float | None = None,
                              method: str = "auto") -> float:
    """The spectral radius of ``(1 - a) I + a W``, a leaky reservoir's linearisation.

    A leaky-integrator network ``x -> (1 - a) x + a f(W x + W_in u + b)`` has at
    the origin, for ``f = tanh`` without input and bias, the Jacobian
    ``(1 - a) I + a W``; its spectral radius (Jaeger et al. 2007) is the
    effective spectral radius that echo-state practice tunes below 1. With a
    leak per block, ``a`` is the diagonal of the block rates.

    Parameters
    ----------
    map : IterativeMap, or a square dense or sparse matrix
        A map contributes its weights without the input block's rows and columns
        (the input overwrites that block) and its :attr:`~itermap.IterativeMap.leak`;
        a matrix ``W`` is the recurrent weight matrix itself.
    leak : float, optional
        The leak rate in (0, 1] of a matrix ``map`` (1 when omitted); a map
        carries its own, so ``leak`` is refused with one.
    method : {"auto", "dense", "arnoldi"}
        ``"dense"``: all eigenvalues (LAPACK); ``"arnoldi"``: the eigenvalue of
        largest modulus by ARPACK (sparse matrices of many units); ``"auto"``:
        ARPACK for a sparse matrix of at least 400 units, else dense.

    Returns
    -------
    float
        ``max |eig((1 - a) I + a W)|``.

    Raises
    ------
    TypeError
        A map with no weight matrix, or a ``map`` that is no matrix.
    ValueError
        A matrix that is not square, a bad ``leak`` or ``method``, ``leak`` with
        a map, or a map with no unit outside its input block.

    References
    ----------
    .. [1] H. Jaeger, M. Lukosevicius, D. Popovici, U. Siewert, "Optimization and
       applications of echo state networks with leaky-integrator neurons",
       Neural Networks 20(3), 335-352 (2007).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import effective_spectral_radius
    >>> W = np.array([[0.0, 0.9], [0.9, 0.0]])          # eigenvalues +-0.9
    >>> round(effective_spectral_radius(W), 12)
    0.9
    >>> round(effective_spectral_radius(itermap.IterativeMap(W, leak=0.5)), 12)  # 0.5 + 0.45
    0.95
    """
    method = check_choice("method", method, ("auto", "dense", "arnoldi"))
    W, a = _effective_parts(map, leak)
    n = W.shape[0]
    M = (sp.diags(1.0 - a) + sp.diags(a) @ W).tocsr() if is_sparse(W) else \
        np.diag(1.0 - a) + a[:, None] * W
    if method == "auto":
        method = "arnoldi" if is_sparse(M) and n >= _ARNOLDI_DIM else "dense"
    if method == "arnoldi" and n > 2:
        from scipy.sparse.linalg import eigs

        # several of the largest: a random matrix's outermost eigenvalues crowd the circle's
        # edge; a fixed start vector keeps the result the same from run to run
        v0 = np.random.default_rng(0).standard_normal(n)
        vals = eigs(M, k=min(8, n - 2), which="LM", return_eigenvectors=False, tol=1e-12,
                    maxiter=max(1000, 20 * n), v0=v0)
        return float(np.max(np.abs(vals)))
    dense = M.toarray() if is_sparse(M) else M
    return float(np.max(np.abs(np.linalg.eigvals(dense))))


def _effective_parts(map, leak):
    """(W on the non-input units, leak per unit) as NumPy/SciPy float64."""
    if isinstance(map, itermap.IterativeMap):
        if leak is not None:
            raise ValueError("leak: a map carries its own leak; pass leak only with a matrix")
        bm = map.block_matrix
        W = bm.to_sparse() if any(is_sparse(b) for b in bm.blocks.values()) else bm.to_dense()
        W = sp.csr_matrix(W.get() if hasattr(W, "get") else W) if is_sparse(W) else \
            np.asarray(to_numpy(W), dtype=float)
        a = np.repeat(np.asarray(map.leak, dtype=float), map.sizes)
        keep = np.ones(map.dim, dtype=bool)
        if map.input_block is not None:
            keep[map.block_slice(map.input_block)] = False
        if not keep.any():
            raise ValueError("map: every unit is in the input block; there is no recurrent part")
        idx = np.flatnonzero(keep)
        W = W[idx][:, idx]
        return (W.astype(float).tocsr() if is_sparse(W) else W), a[idx]
    if isinstance(map, itermap.Map):
        raise TypeError(f"map: a {type(map).__name__} has no weight matrix; pass an "
                        "IterativeMap or a matrix")
    if isinstance(map, str | bytes) or not (is_sparse(map) or hasattr(map, "shape")
                                           or isinstance(map, list | tuple)):
        raise TypeError(f"map must be an IterativeMap or a square matrix, got "
                        f"{type(map).__name__}")
    dtype = getattr(map, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "biuf":
        raise TypeError(f"map must be a real matrix, got dtype {dtype}")
    if is_sparse(map):
        W = sp.csr_matrix(map.get() if hasattr(map, "get") else map, dtype=float)
        data = W.data
    else:
        try:
            W = np.asarray(to_numpy(map) if hasattr(map, "shape") else map, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"map must be a real matrix ({err})") from None
        data = W
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"map must be a non-empty square matrix, got shape {W.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("map contains NaN or inf")
    from itermap._network import _check_leak

    rate = 1.0 if leak is None else _check_leak(leak, 1)[0]
    return W, np.full(W.shape[0], rate)
