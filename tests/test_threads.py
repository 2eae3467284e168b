"""BLAS thread holds: SciPy's own library, and the Lyapunov loop's policy."""

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from itermap._threads import _scipy_own_blas, scipy_blas_limited  # noqa: E402
from itermap.analysis._reorth import Reorthonormalizer  # noqa: E402


def _threads():
    ctl = threadpoolctl.ThreadpoolController()
    return {lib.filepath: lib.num_threads for lib in ctl.lib_controllers
            if lib.user_api == "blas"}


def test_scipy_blas_limited_holds_scipys_own_library_only():
    own = _scipy_own_blas()
    before = _threads()
    with scipy_blas_limited(1):
        inside = _threads()
    assert _threads() == before
    if own is None:  # one shared library (conda, system builds): nothing to hold
        assert inside == before
        return
    held = {lib.filepath for lib in own.lib_controllers}
    assert held and all(inside[path] == 1 for path in held)
    assert all(inside[path] == before[path] for path in before if path not in held)
    assert all("scipy" in path for path in held)


@pytest.mark.parametrize("shape, pool, small", [((1, 2000, 10), True, True),
                                               ((1, 2000, 10), False, False),
                                               ((1, 300, 256), True, False)])
def test_reorthonormalizer_sets_the_loops_threads_once_and_restores_them(shape, pool, small):
    Y = np.linalg.qr(np.random.default_rng(0).normal(size=shape))[0]
    before = _threads()
    with Reorthonormalizer(pool_products=pool) as reorth:
        Q, logd, _ = reorth(Y)
        inside = _threads()
        reorth(Y)
    assert _threads() == before
    if small:  # every library at one thread for the loop
        assert all(n == 1 for n in inside.values())
    elif shape[-1] < 128:  # NumPy's CholeskyQR at NumPy's threads: nothing held
        assert inside == before
    elif _scipy_own_blas() is not None:  # SciPy's held for its factorisations, NumPy's free
        scipy_paths = {lib.filepath for lib in _scipy_own_blas().lib_controllers}
        assert all(inside[p] == 1 for p in scipy_paths)
        assert all(inside[p] == before[p] for p in before if p not in scipy_paths)
    np.testing.assert_allclose(np.abs(Q), np.abs(np.linalg.qr(Y)[0]), atol=1e-12)
    np.testing.assert_allclose(logd, 0.0, atol=1e-12)  # Y is orthonormal already


def test_uses_thread_pool_only_for_large_sparse_itermap_maps():
    import itermap
    from itermap._sparse_product import uses_thread_pool

    big = itermap.random_rnn(20000, density=1e-3, rng=0)
    assert uses_thread_pool(big, 10) == (_sparse_threads() > 1)
    assert not uses_thread_pool(itermap.random_rnn(300, rng=0), 10)  # dense: BLAS's own
    assert not uses_thread_pool(itermap.random_rnn(300, density=0.01, rng=0), 1)  # small
    assert not uses_thread_pool(itermap.FunctionMap(lambda x: x, 3, tangent=lambda x, v: v), 3)


def _sparse_threads():
    from itermap import _sparse_product

    return _sparse_product.n_threads()


def _product_in_child(queue):
    import scipy.sparse as sp

    from itermap import _sparse_product
    from itermap.analysis._lapack_threads import batched_solve

    S = sp.random(200, 200, density=0.1, format="csr", random_state=0)
    A = np.stack([np.eye(64) * (i + 2) for i in range(64)])
    x = batched_solve(A, np.ones((64, 64)))
    queue.put((float(_sparse_product.csr_times(S, np.ones((200, 4))).sum()),
               float(x[0, 0])))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_thread_pools_work_in_a_child_forked_after_the_parent_used_them(monkeypatch):
    import multiprocessing as mp

    import scipy.sparse as sp

    from itermap import _sparse_product
    from itermap.analysis import _lapack_threads

    monkeypatch.setattr(_sparse_product, "_MIN_WORK_PER_THREAD", 1)
    monkeypatch.setattr(_lapack_threads, "_n_threads", lambda: 2)
    S = sp.random(200, 200, density=0.1, format="csr", random_state=0)
    expected = float((S.toarray() @ np.ones((200, 4))).sum())
    assert _sparse_product.csr_times(S, np.ones((200, 4))).sum() == pytest.approx(expected)
    A = np.stack([np.eye(64) * (i + 2) for i in range(64)])
    _lapack_threads.batched_solve(A, np.ones((64, 64)))  # both pools now have threads
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_product_in_child, args=(queue,))
    child.start()
    child.join(30)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "a forked child waited forever on the parent's thread pool"
    total, solved = queue.get(timeout=5)
    assert total == pytest.approx(expected) and solved == pytest.approx(0.5)


def test_itermap_num_threads_lowers_the_pools(monkeypatch):
    from itermap._threads import n_threads

    monkeypatch.delenv("ITERMAP_NUM_THREADS", raising=False)
    full = n_threads()
    monkeypatch.setenv("ITERMAP_NUM_THREADS", "1")
    assert n_threads() == 1
    monkeypatch.setenv("ITERMAP_NUM_THREADS", "1000")
    assert n_threads() == full  # a limit, never more than the CPUs (and 8)
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv("ITERMAP_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="ITERMAP_NUM_THREADS must be a positive integer"):
            n_threads()
