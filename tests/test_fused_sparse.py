"""The fused sparse Lyapunov step against the dense map's spectrum (another code path)."""

import numpy as np
import pytest
import scipy.sparse as sp

from itermap import IterativeMap
from itermap._running import _fused_sparse
from itermap._running._fused_steppers import FusedStepper
from itermap._running._threads import OPTIONS
from itermap.analysis import lyapunov_spectrum


@pytest.fixture
def fused_calls(monkeypatch):
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)  # small maps split too
    calls = {"n": 0, "fallback": 0}
    step, factor = _fused_sparse.FusedSparseStep.advance, _fused_sparse.FusedSparseStep._factor

    def counted(self, **kw):
        calls["n"] += 1
        calls["qr"] = calls.get("qr", 0) + kw.get("qr", True)
        return step(self, **kw)

    def counted_factor(self, G):
        out = factor(self, G)
        calls["fallback"] += out is None
        return out

    monkeypatch.setattr(_fused_sparse.FusedSparseStep, "advance", counted)
    monkeypatch.setattr(_fused_sparse.FusedSparseStep, "_factor", counted_factor)
    return calls


def _pair(activation="tanh", bias=False, gain=1.5, n=300, density=0.05):
    rng = np.random.default_rng(4)
    W = sp.random(n, n, density=density, format="csr", random_state=5,
                  data_rvs=lambda size: rng.normal(size=size) * gain / np.sqrt(n * density))
    b = rng.normal(size=n) * 0.1 if bias else None
    return IterativeMap(W, b, activation), IterativeMap(W.toarray(), b, activation)


@pytest.mark.parametrize("activation, bias", [
    ("tanh", False), ("tanh", True), ("sigmoid", True),
])
def test_fused_step_gives_the_dense_maps_spectrum(activation, bias, fused_calls):
    sparse, dense = _pair(activation, bias)
    W = sparse.block_matrix.to_sparse().tocsr()
    blocks = _fused_sparse._blocks(W, 2)
    assert len(blocks) == 2
    V = np.random.default_rng(0).normal(size=(300, 9))
    for lo, hi, rows in blocks:  # the blocks cover W: W[lo:hi] V
        np.testing.assert_allclose(rows @ V, W[lo:hi] @ V, rtol=0, atol=1e-13)
    assert sparse._kind == "sparse" and dense._kind == "dense"
    x0 = np.random.default_rng(1).normal(size=300)
    got = lyapunov_spectrum(sparse, x0, 200, k=8, transient=20, rng=0)
    assert fused_calls["n"] == 220  # every step went through the fused path
    ref = lyapunov_spectrum(dense, x0, 200, k=8, transient=20, rng=0)
    np.testing.assert_allclose(got.exponents, ref.exponents, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.state, ref.state, rtol=0, atol=1e-10)
    Q = np.asarray(got.tangents)[0]
    np.testing.assert_allclose(Q.T @ Q, np.eye(8), atol=1e-12)


def test_fused_step_falls_back_to_the_checked_path_and_resumes(fused_calls, monkeypatch):
    sparse, dense = _pair()
    factor = _fused_sparse.FusedSparseStep._factor
    turn = {"i": 0}

    def every_third(self, G):
        turn["i"] += 1
        return None if turn["i"] % 3 == 0 else factor(self, G)

    monkeypatch.setattr(_fused_sparse.FusedSparseStep, "_factor", every_third)
    x0 = np.random.default_rng(2).normal(size=300)
    got = lyapunov_spectrum(sparse, x0, 150, k=6, rng=0)
    ref = lyapunov_spectrum(dense, x0, 150, k=6, rng=0)
    assert turn["i"] == 150
    np.testing.assert_allclose(got.exponents, ref.exponents, rtol=0, atol=1e-10)


def test_fused_step_covers_only_what_it_can(monkeypatch):
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)
    sparse, dense = _pair()
    x = np.zeros((1, 300))
    Q = np.zeros((1, 300, 8))

    def kind(m, x, Q, u=None):
        return type(m.tangent_stepper(x, Q, u))

    assert kind(sparse, x, Q) is FusedStepper
    assert kind(dense, x, Q) is type(None)
    # the runs the fused step does not cover: the general loop
    assert kind(sparse, np.zeros((2, 300)), np.zeros((2, 300, 8))) is type(None)
    assert kind(sparse, x, Q[..., :3]) is type(None)
    assert kind(sparse, x.astype(np.float32), Q.astype(np.float32)) is type(None)
    driven = IterativeMap(sparse.block_matrix.to_sparse(), activation="tanh",
                          sizes=[20, 280], input_block=0)
    assert driven._kind == "sparse"
    assert kind(driven, x, Q, np.zeros(20)) is type(None)  # a driven map
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1 << 40)
    assert kind(sparse, x, Q) is type(None)  # products too small to split


def test_fused_step_with_spaced_qrs_matches_the_dense_maps(fused_calls):
    """QR every 5 steps: the same exponents and the same precision-loss monitor."""
    sparse, dense = _pair(bias=True)
    x0 = np.random.default_rng(3).normal(size=300)
    got = lyapunov_spectrum(sparse, x0, 200, k=8, transient=10, reorthonormalize_every=5,
                            rng=0)
    assert fused_calls["n"] == 210 and fused_calls["qr"] == 10 + 200 // 5
    ref = lyapunov_spectrum(dense, x0, 200, k=8, transient=10, reorthonormalize_every=5,
                            rng=0)
    np.testing.assert_allclose(got.exponents, ref.exponents, rtol=0, atol=1e-10)
    assert got.precision_loss == pytest.approx(ref.precision_loss, rel=1e-9)
    assert got.precision_loss > 0  # five steps apart, the columns lose digits
    Q = np.asarray(got.tangents)[0]
    np.testing.assert_allclose(Q.T @ Q, np.eye(8), atol=1e-12)
