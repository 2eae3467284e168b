"""Report kinds for memory, continuation, covariant vectors, finite-time exponents and Newton."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from itermap import IterativeMap

from .. import plots
from .._checks import is_network
from .._graph import fir_length
from .._memory import memory_capacity as capacity
from .._parallel_in_time import newton_lyapunov_scan
from ..fixed_points import continuation as follow
from ..lyapunov import covariant_lyapunov_vectors, finite_time_exponents
from ._kinds import _F8, FLOPS, QR_OVERHEAD, _figure, _fmt, _known_dim, _plot, _step_cost
from ._models import AnalysisModel, Cost, Count, Finite, Name, NonNegative, Positive, SpecError
from ._registry import report_kind
from ._starts import bounded_run


# -- memory capacity along the continuum ---------------------------------------------------
class MemoryCapacityKind(AnalysisModel):
    """Jaeger's memory capacity per delay, and the total, for driven networks."""

    kind: Literal["memory_capacity"]
    networks: list[Name] = Field(min_length=1)
    max_delay: Count = 15
    steps: Count = 3000
    washout: NonNegative = 100
    needs_input = True

    def check(self, spec, where):
        start = max(self.washout, self.max_delay)  # as memory_capacity counts its samples
        for name in self.networks:
            n = _known_dim(spec, name, tangent=True) or 0
            if (self.steps + 1 - start) // 2 <= n + 1:
                raise SpecError(f"{where}.steps: {self.steps} leaves too few samples after "
                                f"washout and max_delay to fit a readout of {name}'s {n} "
                                f"units: use steps > {start + 2 * (n + 2)}")

    def cost(self, sizes):
        seconds = sum(self.steps * _step_cost(sizes[n]) for n in self.networks)
        rows = max(sizes[n].dim for n in self.networks)
        return Cost(bytes=_F8 * (self.steps + 1) * rows * 3, seconds=seconds + _figure(1.0),
                    memory_key="steps")


@report_kind(MemoryCapacityKind)
def memory_capacity(cfg, ctx, out):
    results = {name: capacity(ctx.nets[name], max_delay=cfg.max_delay, steps=cfg.steps,
                              washout=cfg.washout, rng=ctx.rng) for name in cfg.networks}
    _plot(out, "memory_capacity", "Memory capacity: the squared correlation between the input "
          "d steps back and its best linear readout from the state, per delay; the legend "
          f"gives the total over delays 1 to {cfg.max_delay}.", plots.memory_capacity, results)
    out.numbers.update({name: {"capacity": float(r.capacity), "r2": r.r2.tolist()}
                        for name, r in results.items()})
    out.table("Memory capacity (sum of r² over delays)", ["network", "capacity"],
              [[name, f"{r.capacity:.3f}"] for name, r in results.items()])


# -- continuation of the fixed points of x -> tanh(g x + u) ---------------------------------
class ContinuationKind(AnalysisModel):
    """Fixed points of one tanh unit, x = tanh(g x + u), followed in u through its folds."""

    kind: Literal["continuation"]
    gain: Positive = 1.5
    u_min: Finite = -0.5
    u_max: Finite = 0.5

    def title(self):
        return f"continuation (one tanh unit, gain {self.gain:g})"

    def check(self, spec, where):
        if not self.u_min < self.u_max:
            raise SpecError(f"{where}.u_min: {self.u_min:g} must be below u_max "
                            f"{self.u_max:g}")

    def cost(self, sizes):
        return Cost(bytes=1e6, seconds=0.2 + _figure(1.0), memory_key="gain", time_key="gain")


@report_kind(ContinuationKind)
def continuation(cfg, ctx, out):
    res = follow(lambda u: IterativeMap(np.array([[cfg.gain]]), np.array([float(u)]), "tanh"),
                 [cfg.u_min, cfg.u_max], np.array([-0.99]))
    _plot(out, "continuation", f"Fixed points of x = tanh({cfg.gain:g} x + u) against u: "
          "stable solid, unstable dashed, the folds marked.", plots.continuation, res,
          xlabel="input $u$")
    # the folds in closed form: g (1 - x^2) = 1 and u = artanh(x) - g x
    folds = []
    if cfg.gain > 1:
        x = np.sqrt(1 - 1 / cfg.gain)
        folds = sorted(float(s * (np.arctanh(x) - cfg.gain * x)) for s in (1, -1))
    found = sorted(float(b["parameter"]) for b in res.bifurcations if b["kind"] == "fold")
    out.numbers.update(gain=cfg.gain, folds_found=found, folds_closed_form=folds,
                       bifurcations=[{"kind": b["kind"], "u": float(b["parameter"])}
                                     for b in res.bifurcations])
    rows = [[f"fold {i + 1}", _fmt(f, ".6f"), _fmt(w, ".6f")]
            for i, (f, w) in enumerate(zip(found, folds))]
    out.table("Folds: located by the continuation, and g(1 - x²) = 1 in closed form",
              ["bifurcation", "u (continuation)", "u (closed form)"], rows)


# -- covariant Lyapunov vectors -------------------------------------------------------------
class CovariantVectorsKind(AnalysisModel):
    """Covariant Lyapunov vectors (Ginelli et al. 2007): angles and localization."""

    kind: Literal["covariant_vectors"]
    network: Name
    steps: Count = 1000
    k: Count = 4
    transient: NonNegative = 200

    def check(self, spec, where):  # the section plots the angle between vectors 1 and 2
        if self.k < 2:
            raise SpecError(f"{where}.k: the angles need two vectors, got k = {self.k}")
        if (_known_dim(spec, self.network, tangent=True) or 2) < 2:
            raise SpecError(f"{where}.network: {self.network} has one unit, so one vector: "
                            "the angles need two")

    def cost(self, sizes):
        s = sizes[self.network]
        k = min(self.k, s.dim)
        T = self.steps + 2 * self.transient
        return Cost(bytes=_F8 * (self.steps + 1) * (s.dim * k + k * k) * 2,
                    seconds=2 * T * (_step_cost(s, 1, k) + QR_OVERHEAD
                                     + 4.0 * s.dim * k * k / FLOPS)
                    + _figure(2.3), memory_key="steps")


@report_kind(CovariantVectorsKind)
def covariant_vectors(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    L = fir_length(m) if is_network(m) else None
    if L is not None:       # nilpotent: every exponent is -inf, no vector to compute
        out.numbers.update(applicable=False, fir_length=L)
        out.note(f"Covariant Lyapunov vectors do not apply to {cfg.network}: its sparsity "
                 f"graph has no cycle (a feed-forward network, as an MLP is), so it forgets "
                 f"every perturbation after {L} steps; every Lyapunov exponent is −∞ and "
                 f"no covariant vector exists.")
        return
    k = min(cfg.k, m.dim - m.forced_size)
    res = bounded_run(out, ctx, cfg, lambda m, x, u: covariant_lyapunov_vectors(
        m, x, cfg.steps, k=k, transient=cfg.transient, inputs=u, rng=ctx.rng))
    _plot(out, f"clv_angles_{cfg.network}", "Angles between the first two covariant Lyapunov "
          f"vectors of {cfg.network} along {cfg.steps} steps: near-tangencies show as angles "
          "near 0.", plots.clv_angles, res)
    angles = np.asarray(res.angles, dtype=float)
    pr = np.asarray(res.participation_ratio, dtype=float)
    out.numbers.update(k=k, min_angle_12=float(np.min(angles[..., 0, 1])),
                       median_angle_12=float(np.median(angles[..., 0, 1])))
    mean_pr = pr.reshape(-1, pr.shape[-1]).mean(axis=0)
    out.numbers["mean_participation_ratio"] = mean_pr.tolist()
    out.table(f"Localization of the covariant vectors of {cfg.network} (participation "
              f"ratio: 1 for one unit, {m.dim} for all alike)", ["vector", "mean PR"],
              [[i + 1, f"{v:.2f}"] for i, v in enumerate(mean_pr)])


# -- finite-time exponents ------------------------------------------------------------------
class FiniteTimeKind(AnalysisModel):
    """The distribution of finite-time Lyapunov exponents over windows."""

    kind: Literal["finite_time"]
    network: Name
    window: Count = 20
    steps: Count = 4000
    k: Count = 2
    transient: NonNegative = 200

    def check(self, spec, where):
        if self.window > self.steps:
            raise SpecError(f"{where}.window: {self.window} steps is longer than the run "
                            f"(steps = {self.steps}): there is no window to measure")

    def cost(self, sizes):
        s = sizes[self.network]
        k = min(self.k, s.dim)
        return Cost(bytes=_F8 * (self.steps // self.window + 1) * k * 4 + _F8 * s.dim * k * 4,
                    seconds=(self.steps + self.transient) * (_step_cost(s, 1, k) + QR_OVERHEAD)
                    + _figure(1.0), memory_key="steps")


@report_kind(FiniteTimeKind)
def finite_time(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    k = min(cfg.k, m.dim - m.forced_size)
    res = bounded_run(out, ctx, cfg, lambda m, x, u: finite_time_exponents(
        m, x, cfg.window, cfg.steps, k=k, transient=cfg.transient, inputs=u, rng=ctx.rng))
    _plot(out, f"finite_time_{cfg.network}", f"Finite-time Lyapunov exponents of {cfg.network} "
          f"over windows of {cfg.window} steps; dotted lines mark the means.",
          plots.finite_time_histogram, res)
    ex = np.asarray(res.exponents, dtype=float).reshape(-1, k)
    mean, std = ex.mean(axis=0), ex.std(axis=0, ddof=1)
    out.numbers.update(window=cfg.window, mean=mean.tolist(), std=std.tolist(),
                       windows=int(ex.shape[0]))
    out.table(f"Finite-time exponents of {cfg.network} ({ex.shape[0]} windows of "
              f"{cfg.window} steps)", ["i", "mean", "std"],
              [[i + 1, f"{a:.4f}", f"{b:.4f}"] for i, (a, b) in enumerate(zip(mean, std))])


# -- Newton over the whole trajectory -------------------------------------------------------
class NewtonKind(AnalysisModel):
    """Newton (DEER) iterations to convergence against the largest Lyapunov exponent."""

    kind: Literal["newton"]
    gains: list[Positive] = Field(default=[0.3, 0.6, 0.9, 1.2, 1.5, 2.0, 2.5], min_length=1)
    n: Count = 32
    steps: Count = 128
    trials: Count = 2

    def title(self):
        return f"parallel-in-time Newton (random tanh networks of {self.n} units)"

    def cost(self, sizes):
        work = len(self.gains) * self.trials * self.steps * 2.0 * self.n ** 3 * 100
        return Cost(bytes=_F8 * self.steps * self.n * self.n * 8,
                    seconds=work / FLOPS + 0.3 + _figure(2.3), memory_key="n", time_key="steps")


@report_kind(NewtonKind)
def newton(cfg, ctx, out):
    scan = newton_lyapunov_scan(np.asarray(cfg.gains), n=cfg.n, steps=cfg.steps,
                                trials=cfg.trials, rng=ctx.rng)
    _plot(out, "newton_iterations", f"Newton iterations for the whole trajectory ({cfg.steps} "
          "steps) against the largest Lyapunov exponent of each network: contracting networks "
          "converge in a few iterations; near and above 0 the count grows to the number of "
          "steps.", plots.newton_lyapunov, scan)
    lam = np.asarray(scan.lyapunov, dtype=float)
    its = np.asarray(scan.iterations, dtype=float)
    conv = np.asarray(scan.converged, dtype=bool)
    out.numbers.update(gains=[float(g) for g in np.asarray(scan.gains).ravel()],
                       lyapunov=lam.tolist(), iterations=its.tolist(),
                       converged=conv.tolist())
    rows = [[f"{g:.2f}", f"{la:.3f}", int(it) if c else f"> {cfg.steps} (no)"]
            for g, la, it, c in zip(np.asarray(scan.gains).ravel(), lam.ravel(), its.ravel(),
                                    conv.ravel())]
    out.table("Newton iterations against the largest exponent", ["gain", "λ1", "iterations"],
              rows)
