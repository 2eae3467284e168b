"""The associative scan of affine maps, against a plain loop over time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap import affine_scan, linear_recurrence
from tests.conftest import to_np


def _loop_prefixes(A, b, kind):
    """f_t o ... o f_0 one composition at a time (NumPy)."""
    T, d = b.shape[0], b.shape[-1]
    batch = b.shape[1:-1]
    if kind == "diagonal":
        P, q = np.ones(batch + (d,)), np.zeros(batch + (d,))
    else:
        P, q = np.broadcast_to(np.eye(d), batch + (d, d)).copy(), np.zeros(batch + (d,))
    Ps, qs = [], []
    for t in range(T):
        if kind == "diagonal":
            P, q = A[t] * P, A[t] * q + b[t]
        else:
            P = np.matmul(A[t], P)
            q = np.matmul(A[t], q[..., None])[..., 0] + b[t]
        Ps.append(P)
        qs.append(q)
    return np.array(Ps), np.array(qs)


def _loop_states(A, b, x0, kind):
    x, out = x0, []
    for t in range(b.shape[0]):
        x = A[t] * x + b[t] if kind == "diagonal" else np.matmul(A[t], x[..., None])[..., 0] + b[t]
        out.append(x)
    return np.array(out)


def _block_dense(blocks):
    """The block-diagonal (T, ..., d, d) matrices of a list of blocks."""
    sizes = [Bk.shape[-1] for Bk in blocks]
    d = sum(sizes)
    out = np.zeros(blocks[0].shape[:-2] + (d, d))
    start = 0
    for Bk, s in zip(blocks, sizes):
        out[..., start:start + s, start:start + s] = Bk
        start += s
    return out


shapes = st.tuples(st.integers(1, 40), st.lists(st.integers(1, 3), max_size=2),
                   st.integers(1, 4))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, kind=st.sampled_from(["full", "diagonal"]), seed=st.integers(0, 2**16))
def test_scan_matches_a_loop(shape, kind, seed):
    T, batch, d = shape
    rng = np.random.default_rng(seed)
    a_shape = (T, *batch, d, d) if kind == "full" else (T, *batch, d)
    # entries up to 0.6 / d keep products bounded, so the comparison is in relative terms
    A = rng.uniform(-1, 1, size=a_shape) * (0.9 if kind == "diagonal" else 0.9 / d)
    b = rng.normal(size=(T, *batch, d))
    x0 = rng.normal(size=(*batch, d))
    A_cum, b_cum = affine_scan(A, b, kind=kind)
    P, q = _loop_prefixes(A, b, kind)
    np.testing.assert_allclose(A_cum, P, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(b_cum, q, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linear_recurrence(A, b, x0, kind=kind),
                               _loop_states(A, b, x0, kind), rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 30), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       B=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_block_scan_matches_the_full_scan_of_the_block_diagonal(T, sizes, B, seed):
    rng = np.random.default_rng(seed)
    blocks = [rng.uniform(-0.3, 0.3, size=(T, B, s, s)) for s in sizes]
    b = rng.normal(size=(T, B, sum(sizes)))
    x0 = rng.normal(size=(B, sum(sizes)))
    dense = _block_dense(blocks)
    A_cum, b_cum = affine_scan(blocks, b, kind="block")
    P, q = _loop_prefixes(dense, b, "full")
    np.testing.assert_allclose(_block_dense(A_cum), P, atol=1e-13)
    np.testing.assert_allclose(b_cum, q, atol=1e-12)
    np.testing.assert_allclose(linear_recurrence(blocks, b, x0, kind="block"),
                               _loop_states(dense, b, x0, "full"), atol=1e-12)


def test_scan_runs_on_any_array_namespace(xp):
    rng = np.random.default_rng(0)
    A = rng.uniform(-0.3, 0.3, size=(17, 2, 3, 3))
    b = rng.normal(size=(17, 2, 3))
    x0 = rng.normal(size=(2, 3))
    got = linear_recurrence(xp.asarray(A), xp.asarray(b), xp.asarray(x0))
    np.testing.assert_allclose(to_np(got), _loop_states(A, b, x0, "full"), atol=1e-12)
    gotd = linear_recurrence(xp.asarray(A[..., 0]), xp.asarray(b), xp.asarray(x0),
                             kind="diagonal")
    np.testing.assert_allclose(to_np(gotd), _loop_states(A[..., 0], b, x0, "diagonal"),
                               atol=1e-12)
    A_cum, _ = affine_scan(xp.asarray(A), xp.asarray(b))
    np.testing.assert_allclose(to_np(A_cum)[-1], _loop_prefixes(A, b, "full")[0][-1],
                               atol=1e-13)


def test_float32_stays_float32():
    rng = np.random.default_rng(1)
    A = rng.uniform(-0.2, 0.2, size=(50, 4, 4)).astype(np.float32)
    b = rng.normal(size=(50, 4)).astype(np.float32)
    x = linear_recurrence(A, b, np.zeros(4, np.float32))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, _loop_states(A.astype(float), b.astype(float), np.zeros(4),
                                               "full"), atol=1e-5)


def test_a_long_scan_keeps_the_recurrence():
    # a closed form: x -> a x + 1 from 0 gives (1 - a^t) / (1 - a)
    T, a = 100_000, 0.999
    x = linear_recurrence(np.full((T, 1), a), np.ones((T, 1)), np.zeros(1), kind="diagonal")
    t = np.arange(1, T + 1)
    np.testing.assert_allclose(x[:, 0], (1 - a ** t) / (1 - a), rtol=1e-11)


@pytest.mark.parametrize("call, match", [
    (lambda: affine_scan(np.ones((3, 2, 2)), np.ones((3, 2)), kind="dense"), "kind"),
    (lambda: affine_scan(np.ones((3, 2, 2)), np.ones(3)), "b must"),
    (lambda: affine_scan(np.ones((4, 2, 2)), np.ones((3, 2))), "A of shape"),
    (lambda: affine_scan(np.ones((3, 2, 3)), np.ones((3, 2))), "A of shape"),
    (lambda: affine_scan(np.ones((3, 2)), np.ones((3, 2)), kind="full"), "A of shape"),
    (lambda: affine_scan(np.ones((3, 2, 2, 2)), np.ones((3, 3, 2))), "batch shape"),
    (lambda: affine_scan([np.ones((3, 1, 1))], np.ones((3, 2)), kind="block"), "covers"),
    (lambda: linear_recurrence(np.ones((3, 2, 2)), np.ones((3, 2)), np.ones(3)), "x0"),
])
def test_bad_shapes_raise_value_errors_naming_the_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: affine_scan(np.ones((3, 2, 2), dtype=int), np.ones((3, 2))), "A must be real"),
    (lambda: affine_scan(np.ones((3, 2, 2)), np.ones((3, 2), dtype=int)), "b must be real"),
    (lambda: affine_scan(np.ones((3, 2, 2)), np.ones((3, 2)), kind="block"), "sequence"),
    (lambda: affine_scan("A", np.ones((3, 2))), "A must be an array"),
])
def test_bad_types_raise_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()
