"""The sparse map's one-pass state-and-tangent step, against dense references."""

import numpy as np
import pytest
import scipy.sparse as sp

import itermap
from itermap import IterativeMap


@pytest.mark.parametrize("batch", [None, 1, 5])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["tanh", ["tanh", "relu", "sigmoid"]])
def test_sparse_step_with_tangent_matches_a_dense_reference(batch, bias, activation):
    rng = np.random.default_rng(3)
    n, k = 12, 4
    W = rng.normal(size=(n, n)) * (rng.random((n, n)) < 0.3)
    b = rng.normal(size=n) if bias else None
    m = IterativeMap(sp.csr_matrix(W), b, activation, sizes=[3, 4, 5])
    assert m._kind == "sparse"
    x = rng.normal(size=(n,) if batch is None else (batch, n))
    V = rng.normal(size=(n, k) if batch is None else (batch, n, k))
    y, JV = m.step_with_tangent(x, V)
    z = x @ W.T + (0.0 if b is None else b)
    acts = [activation] * 3 if isinstance(activation, str) else activation
    ref_y, ref_d = np.empty_like(z), np.empty_like(z)
    for name, s in zip(acts, [slice(0, 3), slice(3, 7), slice(7, 12)]):
        zs = z[..., s]
        if name == "tanh":
            ref_y[..., s], ref_d[..., s] = np.tanh(zs), 1.0 - np.tanh(zs) ** 2
        elif name == "relu":
            ref_y[..., s], ref_d[..., s] = np.maximum(zs, 0.0), (zs > 0).astype(float)
        else:
            sig = 1.0 / (1.0 + np.exp(-zs))
            ref_y[..., s], ref_d[..., s] = sig, sig * (1.0 - sig)
    np.testing.assert_allclose(y, ref_y, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(JV, ref_d[..., :, None] * (W @ V), rtol=1e-12, atol=1e-13)
    assert JV.flags.c_contiguous
    # the tangent alone agrees with the one-pass step
    np.testing.assert_allclose(m.tangent(x, V), JV, rtol=1e-12, atol=1e-13)


def test_sparse_lyapunov_spectrum_matches_the_dense_map():
    from itermap.analysis import lyapunov_spectrum

    m = itermap.random_rnn(400, gain=1.5, density=0.05, rng=0)
    dense = IterativeMap(m.block_matrix.to_dense())
    assert m._kind == "sparse" and dense._kind == "dense"
    x0 = np.random.default_rng(1).normal(size=(2, 400))
    sparse_run = lyapunov_spectrum(m, x0, 60, k=5, transient=20, rng=0)
    dense_run = lyapunov_spectrum(dense, x0, 60, k=5, transient=20, rng=0)
    np.testing.assert_allclose(sparse_run.per_trajectory, dense_run.per_trajectory, rtol=0,
                               atol=1e-9)
