"""The threaded CSR product and the sparse map's one-pass state-and-tangent step."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import IterativeMap
from itermap._running import _sparse_product
from itermap._running._threads import OPTIONS


@pytest.fixture
def always_threaded(monkeypatch):
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)
    monkeypatch.setattr(_sparse_product, "n_threads", lambda: 3)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 30), c=st.integers(1, 6),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 16))
def test_csr_times_equals_the_dense_product(m, n, c, density, seed):
    rng = np.random.default_rng(seed)
    S = sp.random(m, n, density=density, format="csr", random_state=seed)
    V = rng.normal(size=(n, c))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OPTIONS, "sparse_min_work", 1)
        mp.setattr(_sparse_product, "n_threads", lambda: 3)
        out = _sparse_product.csr_times(S, V)
    np.testing.assert_allclose(out, S.toarray() @ V, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32"),
                                    ("float32", "float32")])
@pytest.mark.parametrize("index", ["int32", "int64"])
def test_csr_times_handles_mixed_dtypes_and_wide_indices(dtypes, index, always_threaded):
    rng = np.random.default_rng(5)
    S = sp.random(120, 90, density=0.1, format="csr", random_state=2, dtype=dtypes[0])
    S.indices, S.indptr = S.indices.astype(index), S.indptr.astype(index)
    V = rng.normal(size=(90, 3)).astype(dtypes[1])
    out = _sparse_product.csr_times(S, V)
    assert out.dtype == np.result_type(S.dtype, V.dtype)
    np.testing.assert_allclose(out, S.toarray().astype(float) @ V.astype(float), rtol=1e-5,
                               atol=1e-5)


def test_csr_times_splits_rows_by_nonzeros_and_follows_a_changed_matrix(always_threaded):
    rng = np.random.default_rng(0)
    S = sp.random(300, 200, density=0.05, format="csr", random_state=1)
    V = rng.normal(size=(200, 4))
    np.testing.assert_allclose(_sparse_product.csr_times(S, V), S.toarray() @ V, atol=1e-12)
    blocks = _sparse_product._row_blocks(S, 3)
    assert [b[0] for b in blocks][0] == 0 and blocks[-1][1] == 300
    assert sum(b[2].nnz for b in blocks) == S.nnz
    assert max(b[2].nnz for b in blocks) <= S.nnz / 3 + S.getnnz(axis=1).max()
    # the row blocks are views of S's arrays, not copies
    assert all(np.shares_memory(b[2].data, S.data) for b in blocks)
    assert all(np.shares_memory(b[2].indices, S.indices) for b in blocks)
    S2 = S.copy()
    S2.data[:] = 1.0  # another matrix: its own blocks
    np.testing.assert_allclose(_sparse_product.csr_times(S2, V), S2.toarray() @ V, atol=1e-12)
    key = id(S2)
    del S2
    assert key not in _sparse_product._PARTS


@pytest.mark.parametrize("batch", [None, 1, 5])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["tanh", ["tanh", "relu", "sigmoid"]])
def test_sparse_step_with_tangent_matches_a_dense_reference(batch, bias, activation,
                                                            always_threaded):
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


def test_sparse_lyapunov_spectrum_with_the_threaded_product_matches_the_dense_map(
        monkeypatch):
    from itermap.analysis import lyapunov_spectrum

    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)
    m = itermap.random_rnn(400, gain=1.5, density=0.05, rng=0)
    dense = IterativeMap(m.block_matrix.to_dense())
    assert m._kind == "sparse" and dense._kind == "dense"
    x0 = np.random.default_rng(1).normal(size=(2, 400))
    sparse_run = lyapunov_spectrum(m, x0, 60, k=5, transient=20, rng=0)
    dense_run = lyapunov_spectrum(dense, x0, 60, k=5, transient=20, rng=0)
    np.testing.assert_allclose(sparse_run.per_trajectory, dense_run.per_trajectory, rtol=0,
                               atol=1e-9)
