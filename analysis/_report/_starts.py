"""Starts for the report's analyses on maps whose basin is bounded (a saved Henon or logistic
map): trajectories that escape to infinity are drawn again, or start Newton from their draw."""

from __future__ import annotations

import numpy as np

import itermap

from .. import plots
from ..fixed_points import sample_states

__all__ = ["bounded_run", "fixed_point_starts"]


def _finite_rows(m, x, u, steps):
    """Which rows of ``x`` keep a finite state for ``steps`` steps under a held input ``u``."""
    n = x.shape[0]
    y, alive = x.copy(), np.ones(n, dtype=bool)
    uu = None if u is None else np.broadcast_to(np.asarray(u, dtype=float), (n, np.size(u)))
    with np.errstate(all="ignore"):
        for _ in range(steps):
            rows = np.flatnonzero(alive)
            if not rows.size:
                break
            y[rows] = m.step(y[rows], None if uu is None else uu[rows])
            alive[rows] = np.isfinite(y[rows]).all(axis=1)
    return alive


def bounded_run(out, ctx, cfg, run, *, starts=None, tries=20):
    """``run(m, x0, u)`` on the section's network ``m`` and input ``u`` from starts drawn from
    N(0, 0.25) (``starts`` of them, else one state); where a trajectory overflows (a Henon or
    logistic map's basin is bounded) ``run`` again with the rows that escape within
    ``cfg.transient + cfg.steps`` steps drawn again until none does. How many were drawn
    again goes into ``out`` (0 where nothing escaped: then nothing runs twice)."""
    m, u, rng = ctx.nets[cfg.network], ctx.inputs[cfg.network], ctx.rng
    x0 = rng.normal(size=m.dim if starts is None else (starts, m.dim)) * 0.5
    steps, redrawn = cfg.transient + cfg.steps, 0
    try:
        res = run(m, x0, u)
    except itermap.DivergenceError:
        x = np.array(x0, dtype=float, ndmin=2)
        for _ in range(tries):
            bad = ~_finite_rows(m, x, u, steps)
            if not bad.any():
                break
            redrawn += int(bad.sum())
            x[bad] = rng.normal(size=(int(bad.sum()), m.dim)) * 0.5
        else:
            raise itermap.DivergenceError(f"the starts escape to infinity: after {tries} draws "
                                          f"from N(0, 0.25) some trajectories still overflow "
                                          f"within {steps} steps") from None
        res = run(m, x.reshape(np.shape(x0)), u)
    out.numbers["redrawn_starts"] = redrawn
    if redrawn:
        out.note(f"{plots._plural(redrawn, 'start')} escaped to infinity (the map's basin "
                 f"is bounded) and {'was' if redrawn == 1 else 'were'} drawn again.")
    return res


def fixed_point_starts(m, n, u, rng, steps=20, noise=0.5):
    """``n`` starts for Newton: states ``sample_states`` visits, plus noise, and the count
    of trajectories that escaped to infinity. Where some escape (a Henon or logistic map
    from standard normal draws: its basin is bounded) those start from their draw instead;
    Newton needs no bounded orbit."""
    kw = {} if u is None else {"inputs": u}
    try:
        return sample_states(m, n, steps=steps, noise=noise, rng=rng, **kw), 0
    except itermap.DivergenceError:
        pass
    x = rng.standard_normal((n, m.dim))
    alive = _finite_rows(m, x, u, steps)
    starts = m.wrap(x + noise * rng.standard_normal((n, m.dim)))
    if alive.any():
        starts[alive] = sample_states(m, int(alive.sum()), steps=steps, noise=noise, rng=rng,
                                      x0=x[alive], **kw)
    return starts, int(n - alive.sum())
