"""itermap's one thread pool, its options, and BLAS thread holds (SciPy's own library,
the Lyapunov loop's policy)."""

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from itermap._running._reorth import Reorthonormalizer  # noqa: E402
from itermap._running._threads import _scipy_own_blas, scipy_blas_limited  # noqa: E402


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
    else:  # NumPy's CholeskyQR at NumPy's threads: nothing held
        assert inside == before
    np.testing.assert_allclose(np.abs(Q), np.abs(np.linalg.qr(Y)[0]), atol=1e-12)
    np.testing.assert_allclose(logd, 0.0, atol=1e-12)  # Y is orthonormal already


def test_only_large_sparse_products_split_and_networks_pick_their_steppers():
    import itermap
    from itermap._running._fused_sparse import splits
    from itermap._running._fused_steppers import FusedStepper
    from itermap._running._threads import n_threads

    cores = n_threads() > 1
    assert splits(400_000, 11) == cores and not splits(3_000, 11)
    big = itermap.random_rnn(20000, density=1e-3, rng=0)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(20000, 10)))[0]
    one = big.tangent_stepper(np.zeros((1, 20000)), Q[None])
    two = big.tangent_stepper(np.zeros((2, 20000)), np.stack([Q, Q]))
    assert isinstance(one, FusedStepper) == cores and two is None  # a batch: the general loop
    Q3 = np.zeros((1, 300, 10))
    assert itermap.random_rnn(300, rng=0).tangent_stepper(np.zeros((1, 300)), Q3) is None
    small = itermap.random_rnn(300, density=0.01, rng=0)
    assert small.tangent_stepper(np.zeros((1, 300)), Q3) is None  # too small to split


def test_every_handle_shares_one_pool_and_nested_parts_run_inline():
    from itermap._running._threads import ProcessLocalPool, pool

    assert ProcessLocalPool("a")() is ProcessLocalPool("b")() is pool()

    def outer(i):  # a part that splits again, from a pool thread: no wait on the pool
        return sum(pool.run_parts(lambda j: i * j, range(4)))

    assert pool.run_parts(outer, range(1, 9)) == [6 * i for i in range(1, 9)]
    with pytest.raises(ZeroDivisionError):  # every part done, then the first error raised
        pool.run_parts(lambda i: 1 // i, [1, 0, 2])


def test_options_are_the_thresholds(monkeypatch):
    import scipy.sparse as sp

    from itermap._running import _fused_sparse
    from itermap._running._threads import OPTIONS

    S = sp.random(300, 300, density=0.05, format="csr", random_state=1)
    monkeypatch.setattr(_fused_sparse, "n_threads", lambda: 3)
    assert not _fused_sparse.splits(S.nnz, 3)
    monkeypatch.setattr(OPTIONS, "sparse_min_work", 1)
    assert _fused_sparse.splits(S.nnz, 3)


def _parts_in_child(queue):
    from itermap._running._threads import pool

    queue.put(pool.run_parts(abs, [-1, -2, -3]))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_the_pool_works_in_a_child_forked_after_the_parent_used_it(monkeypatch):
    import multiprocessing as mp

    from itermap._running._threads import pool

    assert pool.run_parts(abs, [-1, -2, -3]) == [1, 2, 3]  # the pool now has threads
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_parts_in_child, args=(queue,))
    child.start()
    child.join(30)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "a forked child waited forever on the parent's thread pool"
    assert queue.get(timeout=5) == [1, 2, 3]


def test_itermap_num_threads_lowers_the_pools(monkeypatch):
    from itermap._running._threads import n_threads

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
