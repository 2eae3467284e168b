"""Fixed points of large sparse maps, and the report's fixed-point time estimate (issue 26
§2, §3).

Rows:
- The gain homotopy (``find_fixed_points(method="homotopy")``) on sparse
  ``random_rnn(n, density=20/n, gain=1.5)`` (3 networks at n = 1000 quick, 3 at
  n = 20,000 full, CPU time), one start from ``sample_states``, against scipy's own
  ``scipy.optimize.newton_krylov`` (finite-difference Jacobian products, LGMRES) from
  the same start; ``method="newton-krylov"`` in the note. The note counts the points at
  residual <= 1e-10, computed here as ``||tanh(W x) - x||`` by a plain scipy.sparse
  product, the non-trivial ones among them (``random_rnn`` has no bias, so ``x = 0`` is
  always a fixed point) and the peak of memory (tracemalloc: NumPy's buffers; plus the
  bound on the sparse LU's fill, which SuperLU allocates untraced).
- ``method="homotopy"`` (the gain homotopy, continuation to ``s = 1``) against
  ``method="newton-krylov"`` from the same start on sparse ``random_rnn(n, 20/n, 1.5)``,
  3 networks at n = 300, 1,000 and 2,000 (10 at 300 quick): networks where a non-trivial
  point (residual <= 1e-10, checked directly) was found, CPU time, traced peak.
- The memory estimate of the Newton-Krylov path (``krylov_memory``, what the search
  refuses on) against the traced peak of a short run at n = 200,000 (20,000 quick):
  no ``n x n`` array is allocated.
- The report's estimate of a ``fixed_points`` analysis against its CPU time
  (``run_report``'s step log), at n = 300, 1,000 and 3,000 (100 and 300 quick): within
  3x is the target.
- ``--recycle [--seed S] [--rtol R]`` (round 14, not in ``run``): the linear algebra the
  n = 20,000 case needs, measured with a GCRO-DR solver written here for the measurement
  (not in the library: it did not bring the target in reach): one Newton system at a
  state of the network's own dynamics solved fresh, then two nearby ones with the
  deflation space carried, and the gain path (``_homotopy._Path``) with every solve by GCRO-DR (to
  relative residual R, 1e-3 by default), its space carried over the whole path, for
  60 s of CPU.
"""

from __future__ import annotations

import io
import re
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.optimize
from threadpoolctl import threadpool_limits

import itermap
from benchmarks._timing import report
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points._newton_krylov import krylov_memory

TOL = 1e-10


def _points(W, X):
    """Distinct rows of ``X`` at residual <= TOL (checked directly), and the non-trivial ones."""
    X = np.asarray(X).reshape(-1, W.shape[0])
    res = np.linalg.norm(np.tanh(X @ W.T) - X, axis=1)
    good = X[res <= TOL]
    kept = []
    for p in good:
        if all(np.linalg.norm(p - q) > 1e-6 for q in kept):
            kept.append(p)
    return len(kept), sum(np.linalg.norm(p) > 1e-6 for p in kept)


def _sparse_search(quick):
    """``method="homotopy"`` on sparse ``random_rnn(n, 20/n, 1.5)``, one start a network
    (3 networks at n = 1000 quick, 3 at 20,000 full), against scipy's
    ``newton_krylov`` from the same start; ``method="newton-krylov"`` with the same budget
    in the note. Memory: the traced peak (NumPy's buffers) plus the bound on the sparse
    LU's fill (SuperLU's own allocations are not traced)."""
    from itermap.analysis.fixed_points._common import _Power
    from itermap.analysis.fixed_points._homotopy import homotopy_memory, uses_lu

    # full size: 3 networks, the library's 600 continuation steps a path (each start tries
    # 3 unfoldings); CPU time (one BLAS thread), the machine being shared
    n, seeds, iters, steps = (1000, range(3), 10, 600) if quick else (20_000, range(3), 40, 600)
    ours, base, peaks, nts, nk_nt, ref_nt = [], 0.0, [], [], 0, 0
    for seed in seeds:
        m = itermap.random_rnn(n, density=20.0 / n, gain=1.5, rng=seed)
        W = m.block_matrix.to_sparse().tocsr()
        X0 = np.asarray(sample_states(m, 1, steps=100, rng=seed + 1))
        lu = uses_lu(_Power(m, 1, None, np), n)
        with threadpool_limits(1):
            tracemalloc.start()
            t0 = time.process_time()
            fp = find_fixed_points(m, X0, method="homotopy", max_iter=steps, progress=False)
            ours.append(time.process_time() - t0)
            peaks.append(tracemalloc.get_traced_memory()[1]
                         + (homotopy_memory(m, 1, n, lu="sparse") if lu else 0.0))
            tracemalloc.stop()
            nk = find_fixed_points(m, X0, method="newton-krylov", max_iter=iters,
                                   progress=False)
            t0 = time.process_time()
            try:
                ends = [scipy.optimize.newton_krylov(lambda x, W=W: np.tanh(W @ x) - x, X0[0],
                                                     f_tol=TOL, maxiter=iters)]
            except scipy.optimize.NoConvergence:
                ends = []
            base += time.process_time() - t0
        nts.append(int(_points(W, np.asarray(fp.points))[1]))
        nk_nt += _points(W, np.asarray(nk.points))[1]
        ref_nt += _points(W, np.asarray(ends))[1] if ends else 0
        print(f"    n={n} seed={seed}: homotopy {nts[-1]} non-trivial in {ours[-1]:.1f} s CPU "
              f"({fp.status_counts()})", flush=True)
    k = len(seeds)
    met = min(nts) >= 1 and max(ours) <= 60.0 and max(peaks) <= 2e9
    note = (f"non-trivial points at residual <= 1e-10 (checked directly) a network: homotopy "
            f"{nts}, newton-krylov ({iters} its) {nk_nt} in all, scipy newton_krylov "
            f"({iters} its) {ref_nt}; slowest network {max(ours):.1f} s CPU; peak (traced + "
            f"LU bound) {max(peaks) / 2**20:.0f} MiB")
    row = report(f"fixed points (homotopy) sparse tanh N={n} density {20 / n:.0e} g=1.5, "
                 f"{k} networks B=1 vs scipy newton_krylov {iters} its", sum(ours) / k,
                 base / k, ">= 1 non-trivial point on every network, <= 60 s, <= 2 GB", met,
                 note)
    print("   ", note, flush=True)
    return [row]


def _homotopy_rows(quick):
    """``method="homotopy"`` against ``method="newton-krylov"`` (100 steps a start) from the
    same start, on 3 seeds (6 quick) per size: CPU time, non-trivial points at residual
    <= 1e-10 checked directly, traced peak."""
    import resource

    sizes, seeds = ((300,), range(10)) if quick else ((300, 1000, 2000), range(3))
    rows = []
    for n in sizes:
        tally = {"homotopy": [0, 0.0, 0, 0.0], "newton-krylov": [0, 0.0, 0, 0.0]}
        for seed in seeds:
            m = itermap.random_rnn(n, density=20.0 / n, gain=1.5, rng=seed)
            W = m.block_matrix.to_sparse().tocsr()
            X0 = np.asarray(sample_states(m, 1, steps=100, rng=seed + 1))
            for method, iters in (("homotopy", 600), ("newton-krylov", 100)):
                with threadpool_limits(1):
                    c0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
                    fp = find_fixed_points(m, X0, method=method, max_iter=iters,
                                           progress=False)
                    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0
                    peak = 0
                    if seed == seeds[0]:      # traced apart: tracemalloc slows the run
                        tracemalloc.start()
                        find_fixed_points(m, X0, method=method, max_iter=iters,
                                          progress=False)
                        peak = tracemalloc.get_traced_memory()[1]
                        tracemalloc.stop()
                _, nt = _points(W, np.asarray(fp.points))
                t = tally[method]
                t[0] += nt > 0
                t[1] += cpu
                t[2] += nt
                t[3] = max(t[3], peak)
                print(f"    n={n} seed={seed} {method}: {nt} non-trivial, CPU {cpu:.1f} s, "
                      f"peak {peak / 2**20:.1f} MiB", flush=True)
        h, k = tally["homotopy"], tally["newton-krylov"]
        k_ = len(seeds)
        note = (f"networks with a non-trivial point: homotopy {h[0]}/{k_} ({h[2]} points), "
                f"newton-krylov {k[0]}/{k_} ({k[2]}); traced peaks (first network) "
                f"{h[3] / 2**20:.1f} / {k[3] / 2**20:.1f} MiB; mean CPU s, 1 start a network")
        rows.append(report(f"homotopy vs newton-krylov, sparse tanh N={n} g=1.5, "
                           f"{k_} networks", h[1] / k_, k[1] / k_,
                           "a non-trivial point on every network", h[0] == k_, note))
        print("   ", note, flush=True)
    return rows


def _large_memory(quick):
    n = 20_000 if quick else 200_000
    m = itermap.random_rnn(n, density=20.0 / n, gain=1.2, rng=0)
    x0 = 0.1 * np.random.default_rng(1).normal(size=(1, n))
    est = krylov_memory(m, 1, n)
    tracemalloc.start()
    t0 = time.perf_counter()
    find_fixed_points(m, x0, method="newton-krylov", max_iter=2, q_steps=0, progress=False)
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    note = (f"estimate {est / 2**20:.0f} MiB, traced peak {peak / 2**20:.0f} MiB, "
            f"one dense n x n {n * n * 8 / 2**30:.0f} GiB; 2 Newton-Krylov steps in {secs:.1f} s")
    row = report(f"Newton-Krylov memory N={n}: traced peak vs estimate", peak, est,
                 "ratio <= 1", peak <= est, note)
    row["ours_s"], row["baseline_s"] = secs, secs      # not times: the ratio is of bytes
    print("   ", note, flush=True)
    return [row]


def _report_estimate(quick):
    from itermap.analysis._report import run_report

    cases = ((100, 8, 1.5),) if quick else \
        ((300, 32, 1.5), (1000, 8, 1.5), (3000, 1, 1.5))
    rows = []
    for n, starts, gain in cases:
        spec = {"seed": 1, "networks": {"r": {"kind": "random_rnn", "n": n, "gain": gain}},
                "analyses": [{"kind": "fixed_points", "network": "r", "starts": starts}]}
        log = io.StringIO()
        with tempfile.TemporaryDirectory() as tmp:
            run_report(spec, Path(tmp) / "r", progress=log, force=True, blas_threads=1)
        wall, cpu, est = re.findall(r"done in ([\d.]+) s, ([\d.e+-]+) s of CPU "
                                    r"\(estimated ([^)]+)\)", log.getvalue())[0]
        value, unit = est.split()
        est_s = float(value) * {"s": 1.0, "min": 60.0, "h": 3600.0}[unit]
        ratio = est_s / float(cpu)
        rows.append(report(f"report estimate, fixed_points N={n} g={gain} B={starts}",
                           est_s, float(cpu), "estimate/CPU in [1/3, 3]",
                           1 / 3 <= ratio <= 3, f"wall {wall} s"))
    return rows


def _orth(w, Q):
    """``w`` less its components along the orthonormal columns of ``Q``, twice (CGS2)."""
    h = Q.T @ w
    w = w - Q @ h
    h2 = Q.T @ w
    return w - Q @ h2, h + h2


def _ritz_basis(z, theta, k):
    """An orthonormal real basis of the eigenvectors of the ``k`` harmonic Ritz values
    of least modulus (a complex pair kept whole)."""
    cols, taken = [], np.zeros(theta.size, bool)
    for i in np.argsort(np.abs(theta)):
        if len(cols) >= k:
            break
        if taken[i] or not np.isfinite(theta[i]):
            continue
        taken[i] = True
        cols.append(z[:, i].real)
        if abs(theta[i].imag) > 1e-12 * max(1.0, abs(theta[i])):
            cols.append(z[:, i].imag)
            taken[np.argmin(np.abs(theta - np.conj(theta[i])) + taken * 1e300)] = True
    P, R = np.linalg.qr(np.array(cols).T)
    return P[:, np.abs(np.diag(R)) > 1e-10 * abs(R[0, 0])]


def _gcrodr(A, b, U=None, m=200, k=100, rtol=1e-6, max_products=8000):
    """GCRO-DR(m, k) (Parks, de Sturler, Mackey, Johnson and Maiti, SIAM J. Sci. Comput.
    28, 2006) for ``A(x) = b``, from ``x = 0``: each cycle ``m - k`` Arnoldi steps on
    ``(I - C C^T) A`` after the recycled pair ``A U = C``; the pair then becomes the ``k``
    harmonic Ritz vectors of least modulus. ``U`` (a space carried from another system)
    starts it. Returns ``x``, matrix products, true relative residual, ``U``."""
    bn, n, prods, C = float(np.linalg.norm(b)), b.size, 0, None
    x, r = np.zeros(n), b.copy()
    if U is not None:
        C, R = np.linalg.qr(np.column_stack([A(u) for u in U.T]))
        prods += U.shape[1]
        U = scipy.linalg.solve_triangular(R, U.T, trans="T").T
        y = C.T @ r
        x, r = x + U @ y, r - C @ y
    while np.linalg.norm(r) > rtol * bn and prods < max_products:
        kk = 0 if C is None else C.shape[1]
        p, beta = m - kk, float(np.linalg.norm(r))
        V, Hb, B = np.zeros((n, p + 1)), np.zeros((p + 1, p)), np.zeros((kk, p))
        V[:, 0], e1 = r / beta, np.eye(p + 1)[0] * beta
        for j in range(p):
            w = A(V[:, j])
            prods += 1
            if kk:
                w, B[:, j] = _orth(w, C)
            w, Hb[:j + 1, j] = _orth(w, V[:, :j + 1])
            Hb[j + 1, j] = np.linalg.norm(w)
            V[:, j + 1] = w / Hb[j + 1, j]
            if (j + 1) % 10 == 0 or prods >= max_products:
                y = np.linalg.lstsq(Hb[:j + 2, :j + 1], e1[:j + 2], rcond=None)[0]
                if (np.linalg.norm(e1[:j + 2] - Hb[:j + 2, :j + 1] @ y) <= rtol * bn
                        or prods >= max_products):
                    p = j + 1
                    break
        Hb, B, V, e1 = Hb[:p + 1, :p], B[:, :p], V[:, :p + 1], e1[:p + 1]
        y = np.linalg.lstsq(Hb, e1, rcond=None)[0]
        x = x + V[:, :p] @ y - (U @ (B @ y) if kk else 0.0)
        r = V @ (e1 - Hb @ y)
        # harmonic Ritz vectors of A on [U D, V_p], A [U D, V_p] = [C, V] G
        if kk:
            d = 1.0 / np.linalg.norm(U, axis=0)
            G = np.block([[np.diag(d), B], [np.zeros((p + 1, kk)), Hb]])
            WtW = np.block([[C.T @ (U * d), np.zeros((kk, p))], [V.T @ (U * d), np.eye(p + 1, p)]])
            Wn, Wp = np.hstack([C, V]), np.hstack([U * d, V[:, :p]])
        else:
            G, WtW, Wn, Wp = Hb, np.eye(p + 1, p), V, V[:, :p]
        theta, z = scipy.linalg.eig(G.T @ G, G.T @ WtW)
        P = _ritz_basis(z, theta, k)
        Q, R = np.linalg.qr(G @ P)
        C = Wn @ Q
        U = scipy.linalg.solve_triangular(R, (Wp @ P).T, trans="T").T
        r = r - C @ (C.T @ r)
    return x, prods + 1, float(np.linalg.norm(b - A(x)) / bn), U


def _recycle(seed, n=20_000, budget=60.0, rtol=1e-3):
    """GCRO-DR at the n = 20,000 case (module docstring), one network; CPU, one thread."""
    import resource

    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    from itermap.analysis.fixed_points._common import _Power
    from itermap.analysis.fixed_points._homotopy import _Path
    from itermap.analysis.fixed_points._newton_krylov import tangent_operator

    # the solver against a direct solve, on a small nonsymmetric system whose spectrum
    # crosses the origin's line (restarted GMRES(40) stalls on it)
    rng = np.random.default_rng(0)
    S = sp.random(400, 400, density=0.05, random_state=1, data_rvs=lambda k: rng.normal(
        0, 1.1 / np.sqrt(20), k)).tocsr() - sp.identity(400)
    rhs = rng.normal(size=400)
    xs = _gcrodr(lambda v: S @ v, rhs, m=40, k=20, rtol=1e-10, max_products=20_000)[0]
    err = np.linalg.norm(xs - spsolve(S.tocsc(), rhs)) / np.linalg.norm(xs)
    print(f"    check: GCRO-DR(40, 20) against spsolve, n = 400: relative error {err:.1e}")
    assert err < 1e-7

    m = itermap.random_rnn(n, density=20.0 / n, gain=1.5, rng=seed)
    W = m.block_matrix.to_sparse().tocsr()
    x0 = np.asarray(sample_states(m, 1, steps=100, rng=seed + 1))[0]
    x = x0.copy()
    with threadpool_limits(1):
        for _ in range(300):               # the continuous-time flow's chaotic state
            x += 0.3 * (np.tanh(W @ x) - x)
        U = None
        for i in range(3):                 # Newton systems at x, then 2 nearby states
            d = 1.0 / np.cosh(W @ x) ** 2
            t0 = time.process_time()
            _, prods, rel, U = _gcrodr(lambda v, d=d: d * (W @ v) - v, x - np.tanh(W @ x), U)
            print(f"    seed {seed}: D W - I solve {i} ({'carried' if i else 'fresh'} space): "
                  f"{prods} products, relative residual {rel:.1e}, "
                  f"{time.process_time() - t0:.1f} s CPU", flush=True)
            x += 0.01 * (np.tanh(W @ x) - x)
        T0, log = time.process_time(), []

        class Path(_Path):
            U = None

            def bordered_step(self, x, s, t, h, last=0.0):
                if time.process_time() - T0 > budget:
                    raise TimeoutError
                tw, (_, J) = self.w * t[:n], tangent_operator(self.F, s * x)
                hs = J.matvec(x) - self.b

                def mv(v):
                    return np.append(s * J.matvec(v[:n]) - v[:n] + v[n] * hs,
                                     tw @ v[:n] + t[n] * v[n])

                dx, prods, _, self.U = _gcrodr(mv, np.append(-h, last), self.U, rtol=rtol)
                log.append(prods)
                return dx

            def turn(self, x, s, t, got):
                c = super().turn(x, s, t, got)
                print(f"      path: CPU {time.process_time() - T0:5.1f} s, s {s:.4f} -> "
                      f"{got[1]:.4f}, {len(log)} solves, {sum(log)} products", flush=True)
                return c

        # lu="idr": the exact tangent and the tight corrector tolerance of the LU mode,
        # every solve (bordered_step) by GCRO-DR
        try:
            xe, st = Path(_Power(m, 1, None, np), 0.5 * x0, lu="idr").run(500)
            print(f"    seed {seed}: path status {st}")
        except TimeoutError:
            print(f"    seed {seed}: {budget:.0f} s of CPU spent")
    print(f"    peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


def run(quick=False):
    return (_sparse_search(quick) + _homotopy_rows(quick) + _large_memory(quick)
            + _report_estimate(quick))


if __name__ == "__main__":
    import sys
    if "--recycle" in sys.argv:
        def _arg(name, default):
            return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
        _recycle(int(_arg("--seed", 0)), rtol=float(_arg("--rtol", 1e-3)))
    elif "--homotopy" in sys.argv:
        _homotopy_rows(quick="--quick" in sys.argv)
    else:
        run(quick="--quick" in sys.argv)
