"""The report kinds, one settings model and one function each, in the registry ``KINDS``
(the package docstring says how to add one), and the machine model of their estimates."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

import itermap

from .. import plots
from .._checks import state_units
from .._graph import fir_length
from .._graph import sparsity_graph as graph_of
from .._memory import impulse_response as response_of
from .._reservoir import first_crossing
from ..fixed_points import find_fixed_points
from ..fixed_points._driver import _KRYLOV_DIM
from ..lyapunov import gain_family, lyapunov_spectrum, mean_field_exponent
from ..lyapunov import lyapunov_scan as scan_of
from ..lyapunov import orbit_diagram as orbits_of
from ..lyapunov._scan import MEAN_FIELD_MAX_GAIN
from ..plots import COLUMN_WIDTHS
from ..plots._common import _legend_below
from ._models import (
    AnalysisModel,
    Cost,
    Count,
    Gains,
    Name,
    NonNegative,
    Positive,
    Sizes,
    SpecError,
    gain_count,
    gain_values,
)
from ._networks import block_labels, rng_for, static_sizes
from ._registry import KINDS, Context, ReportKind, Section, report_kind
from ._starts import bounded_run, fixed_point_starts

__all__ = ["KINDS", "ReportKind", "report_kind", "Context", "Section", "FIGURE_SECONDS"]

# -- the rough machine model of the cost estimates ------------------------------------------
# Seconds of one core's CPU time (small networks run on one BLAS thread); how well they
# match the measured time is a row of benchmarks/RESULTS.md (the report estimates).
#: sustained floating-point rate of dense products on a small machine (flop/s)
FLOPS = 6e9
#: the rate of large LU solves and eigenvalue problems on one core (flop/s), counting the
#: search's own overheads (smaller ones run slower, see _linalg_rate)
LINALG_FLOPS = 8e9
#: Python and dispatch overhead of one batched step (s)
STEP_OVERHEAD = 3e-5
#: extra overhead of a step that also re-orthonormalises a tangent frame (s)
QR_OVERHEAD = 6e-5
#: Python overhead of one IDR(s) product (Newton-Krylov and the gain paths past dim 4096) (s)
KRYLOV_OVERHEAD = 3e-5
#: find_fixed_points' default max_iter: the report runs it with its defaults
_SEARCH_MAX_ITER = inspect.signature(find_fixed_points).parameters["max_iter"].default
#: LU solves' worth of a fixed-point search's fixed cost per unit of gain above 1 (at most
#: 1): the gain rule and wandering of a search whose damped phase reaches no point
GAIN_RULE_SOLVES = 400.0
#: CPU seconds to draw and save one simple figure (PDF, and PNG at 200 dpi)
FIGURE_SECONDS = 0.2
_F8 = 8.0  # bytes of a float64


def _figure(weight=1.0) -> float:
    """Seconds of a figure ``weight`` times as costly as a simple one (panels, log axes)."""
    return FIGURE_SECONDS * weight


def _new_axes(columns=1, height=None):
    """A figure sized for the paper (analyses run inside :func:`plots.paper_style`)."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(COLUMN_WIDTHS[columns],
                                 height or plt.rcParams["figure.figsize"][1]))


def _plot(out, stem, caption, draw, *args, columns=1, height=None, **kwargs):
    """``draw(*args, ax=ax, **kwargs)`` on a new paper-sized figure, added to ``out``."""
    fig, ax = _new_axes(columns, height)
    draw(*args, ax=ax, **kwargs)
    out.figure(stem, fig, caption)


def _step_cost(s: Sizes, batch=1, vectors=1) -> float:
    """Seconds of one batched step with ``vectors`` tangent vectors per state."""
    return STEP_OVERHEAD + 2.0 * s.nnz * batch * vectors / FLOPS


def _fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# -- the kinds ------------------------------------------------------------------------------
class Equivalence(AnalysisModel):
    """The MLP as an iterative map: L steps reproduce a plain forward pass."""

    kind: Literal["equivalence"]
    network: Name
    batch: Count = 32
    needs = ("mlp",)

    def cost(self, sizes):
        s = sizes[self.network]
        return Cost(bytes=6 * _F8 * self.batch * s.dim,
                    seconds=0.002 + 8 * _step_cost(s, self.batch),
                    memory_key="batch", time_key="batch")


@report_kind(Equivalence)
def equivalence(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    L = len(m.sizes) - 1
    x = ctx.rng.normal(size=(cfg.batch, m.input_size))
    h = x  # a plain forward pass, written here independently of the map
    for layer in range(1, L + 1):
        block = m.block_matrix.block(layer, layer - 1)
        W = np.asarray(block.toarray() if hasattr(block, "toarray") else block)
        b = 0.0 if m.bias is None else np.asarray(m.bias)[m.block_slice(layer)]
        h = m.activations[layer].apply(h @ W.T + b, np)
    state = m.zeros(cfg.batch)
    for _ in range(L):
        state = m.step(state, x)
    err = float(np.max(np.abs(m.readout(state) - h)))
    rests = bool(np.array_equal(m.step(state, x), state))
    out.numbers.update(layers=L, batch=cfg.batch, max_abs_error=err,
                       one_more_step_changes_nothing=rests, settle_steps=m.settle_steps)
    out.table("The MLP as an iterative map", ["quantity", "value"],
              [["layers L", L],
               [f"max |map after L steps - forward pass| ({cfg.batch} inputs)", f"{err:.2e}"],
               ["state at rest after L steps", rests]])


class BlockMatrixKind(AnalysisModel):
    """The weight matrix, its nonzeros and blocks."""

    kind: Literal["block_matrix"]
    network: Name

    def cost(self, sizes):
        s = sizes[self.network]
        return Cost(bytes=4 * _F8 * s.nnz + _F8 * s.dim ** 2,
                    seconds=0.03 + 2e-7 * s.nnz + _figure(1.4))


def _nnz(block):
    if block is None:
        return 0
    return int(block.count_nonzero() if hasattr(block, "count_nonzero")  # sparse
               else np.count_nonzero(np.asarray(block)))


@report_kind(BlockMatrixKind)
def block_matrix(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    bm = getattr(m, "block_matrix", None)
    if bm is None:  # a saved classic map (Henon, logistic): its class is known only now
        raise TypeError(f"network {cfg.network}: a {type(m).__name__} has no weight matrix "
                        "(only maps with a block_matrix, such as IterativeMap, have one)")
    labels = block_labels(m)
    _plot(out, f"block_matrix_{cfg.network}", f"Weight matrix of {cfg.network}: nonzeros (red "
          "positive, blue negative) and block boundaries.", plots.block_matrix, m,
          labels=labels, height=3.3)
    out.numbers.update(sizes=list(bm.sizes), nnz=int(bm.nnz), density=float(bm.density),
                       block_pattern=bm.block_pattern().astype(int).tolist())
    rows = [[labels[i]] + [_nnz(bm.blocks.get((i, j))) for j in range(bm.n_blocks)]
            for i in range(bm.n_blocks)]
    out.table("Nonzeros per block (row: to, column: from)", ["to \\ from"] + labels, rows)


class SparsityGraph(AnalysisModel):
    """The graph of the nonzero weights (unit or block level)."""

    kind: Literal["sparsity_graph"]
    network: Name
    level: Literal["unit", "block"] = "unit"

    def cost(self, sizes):
        s = sizes[self.network]
        edges = s.nnz if self.level == "unit" else 1
        # networkx holds a dict per edge (a few hundred bytes) and draws each one
        return Cost(bytes=400.0 * edges + 4 * _F8 * s.nnz,
                    seconds=0.03 + 2e-5 * edges + _figure(1.0),
                    memory_key="level", time_key="level")


@report_kind(SparsityGraph)
def sparsity_graph(cfg, ctx, out):
    import networkx as nx

    m = ctx.nets[cfg.network]
    G = graph_of(m, level=cfg.level)
    drawn = ("block level: too many units or edges to tell apart"
             if cfg.level == "unit" and max(G.number_of_nodes(), G.number_of_edges())
             > plots._AUTO_BLOCK_LEVEL else f"{cfg.level} level")
    _plot(out, f"sparsity_graph_{cfg.network}", f"Sparsity graph of {cfg.network} "
          f"({G.number_of_edges()} edges, drawn at {drawn}), laid out by block.",
          plots.sparsity_graph, G, labels=block_labels(m))
    dag = nx.is_directed_acyclic_graph(G)
    out.numbers.update(nodes=G.number_of_nodes(), edges=G.number_of_edges(), acyclic=dag,
                       longest_path=int(nx.dag_longest_path_length(G, weight=None)) if dag
                       else None, fir_length=fir_length(m))
    out.table("Sparsity graph", ["quantity", "value"],
              [[k, "-" if v is None else v] for k, v in out.numbers.items()])


class Trajectory(AnalysisModel):
    """A phase portrait: two units against each other after a transient."""

    kind: Literal["trajectory"]
    network: Name
    steps: Count = 300
    transient: NonNegative = 0
    dims: Annotated[list[NonNegative], Field(min_length=1, max_length=2)] = [0, 1]

    def check(self, spec, where):
        n = _known_dim(spec, self.network)
        for d in self.dims:
            if n is not None and d >= n:
                raise SpecError(f"{where}.dims: unit {d} does not exist in {self.network} "
                                f"(dim {n})")
        if len(self.dims) == 1 and n is not None and n > 1:
            raise SpecError(f"{where}.dims: a phase portrait plots two units; {self.network} "
                            f"has {n}, so give two (one only for a 1-unit network)")

    def cost(self, sizes):
        s = sizes[self.network]
        T = self.steps + self.transient
        return Cost(bytes=2 * _F8 * T * s.dim, seconds=T * _step_cost(s) + _figure(1.0),
                    memory_key="steps")


def _known_dim(spec, name, *, tangent=False):
    """A network's dimension from the spec alone (None: known once loaded); with
    ``tangent``, without the input block."""
    net = spec.networks[name]
    if net.kind in ("saved",) or (net.kind == "mlp" and net.widths is None):
        return None
    dim = static_sizes(name, net, f"networks.{name}").dim
    return dim - (net.static_input_size() or 0) if tangent else dim


def _check_autonomous_scan(spec, network, where):
    """A gain scan rebuilds the network at each gain without an input block: refuse one."""
    if spec.networks[network].inputs:
        raise SpecError(f"{where}.network: a gain scan needs an autonomous random_rnn "
                        f"(inputs = 0), {network!r} has inputs = "
                        f"{spec.networks[network].inputs}")


@report_kind(Trajectory)
def trajectory(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    for d in cfg.dims:
        if d >= m.dim:
            raise SpecError(f"trajectory.dims: unit {d} does not exist in {cfg.network} "
                            f"(dim {m.dim})")
    u = ctx.inputs[cfg.network]
    x0 = ctx.rng.normal(size=m.dim) * 0.5
    if u is not None and m.forced_size:  # the input's own units (a GRU's u is no unit)
        x0 = m.with_input(x0, u)
    traj = itermap.iterate(m, x0, cfg.steps + cfg.transient, inputs=u)
    states = np.asarray(traj.states)[cfg.transient:]
    _plot(out, f"trajectory_{cfg.network}", f"Phase portrait of {cfg.network} after "
          f"{cfg.transient} steps" + ("" if u is None else " under the report's input") + ".",
          plots.trajectory, states, dims=cfg.dims if m.dim > 1 else (0,))
    out.numbers.update(steps=cfg.steps, final_norm=float(np.linalg.norm(states[-1])),
                       mean_abs_state=float(np.mean(np.abs(states))))


class ImpulseResponse(AnalysisModel):
    """The linear response to an impulse in every unit, for several networks."""

    kind: Literal["impulse_response"]
    networks: Annotated[list[Name], Field(min_length=1)]
    steps: Count = 20
    method: Literal["linear", "nonlinear"] = "linear"

    def cost(self, sizes):
        seconds = bytes_ = 0.0
        for name in self.networks:
            s = sizes[name]
            seconds += (self.steps + 60) * _step_cost(s, vectors=s.dim)
            bytes_ = max(bytes_, 4 * _F8 * s.dim ** 2 + _F8 * self.steps * s.dim)
        # a log axis with one curve per network
        return Cost(bytes=bytes_, seconds=seconds + _figure(1.6 + 0.2 * len(self.networks)),
                    memory_key="networks")


def _settled(m, u):
    """The state a driven map settles to from zero under its input ``u`` (enough steps)."""
    x = m.zeros()
    for _ in range(getattr(m, "settle_steps", None) or 50):
        x = m.step(x, u)
    return x


@report_kind(ImpulseResponse)
def impulse_response(cfg, ctx, out):
    fig, ax = _new_axes(1)
    rows = []
    for name in cfg.networks:
        m = ctx.nets[name]
        u = ctx.inputs[name]
        x = _settled(m, u) if u is not None else m.zeros()
        ir = response_of(m, x, cfg.steps, inputs=u, method=cfg.method)
        # every source, every block (ImpulseResponse.total: scaled, no underflow at 1e-154)
        total = np.asarray(ir.total, dtype=float)
        plots.impulse_response(total[:, None], ax=ax, labels=[name], mark_length=False)
        length, decay = ir.length, ir.decay_rate
        out.numbers[name] = {"length": None if length is None else int(length),
                             "decay_rate": None if decay is None else float(decay),
                             "norm_per_step": total.tolist()}
        rows.append([name, "infinite" if length is None else int(length), _fmt(decay)])
    ax.set_title("response to an impulse")
    out.figure("impulse_response_" + "_".join(cfg.networks), fig,
               "Norm of the linear response to an impulse against the step: a finite impulse "
               "response ends (the log axis cannot show zeros), a recurrent one decays.")
    out.table("Impulse responses", ["network", "length (steps)", "decay rate (nats/step)"],
              rows)


class FixedPointsKind(AnalysisModel):
    """Fixed points (or period-p points) from sampled starts, with their stability."""

    kind: Literal["fixed_points"]
    network: Name
    starts: Count = 32
    period: Count = 1

    def cost(self, sizes):
        cost = self._cost(sizes[self.network], self.starts, self.period)
        # the time is refused naming the setting whose default saves the more (a long
        # period made it name starts, and lowering them changed little)
        default = type(self).model_fields["starts"].default
        if self.period > 1 and self._cost(sizes[self.network], self.starts, 1).seconds \
                < self._cost(sizes[self.network], min(self.starts, default), self.period).seconds:
            cost = dataclasses.replace(cost, time_key="period")
        return cost

    @staticmethod
    def _cost(s, starts, period):
        n = s.dim
        iters, excess = _newton_iterations(s)
        if n > _KRYLOV_DIM:         # method "auto" runs Newton-Krylov: no n x n array
            return _krylov_cost(s, starts, iters, excess, period)
        # per start and iteration: the Jacobian (products of p of them) and one LU solve
        per_iter = 2 * n ** 3 / 3 + 4 * n ** 2 + (period - 1) * 2.0 * n ** 3
        # distinct points whose spectra are computed: more the stronger the coupling
        points = 1 + starts / 4 * min(2 * excess, 1.0)
        # the search's fixed cost past gain 1, whatever the number of starts: where the
        # damped phase reaches no point, the gain rule's lower-gain searches, deflated
        # reruns and gain paths, and the last start's wandering window
        fixed = GAIN_RULE_SOLVES * min(excess, 1.0)
        return Cost(bytes=6 * _F8 * starts * n ** 2,
                    seconds=((starts * iters + fixed) * per_iter + points * 25 * n ** 3)
                    / _linalg_rate(n) + iters * 1e-3 * period + _figure(1.0),
                    memory_key="starts", time_key="starts")


def _krylov_cost(s: Sizes, starts: int, iters: float, excess: float, period: int) -> Cost:
    """``method="auto"`` past its dim rule: Newton-Krylov from every start, then the gain
    path of each start it leaves unconverged, counted in IDR(s) products (``2 p nnz``
    flops, about ``120 dim`` of IDR(8)'s vector work, ``KRYLOV_OVERHEAD`` each). A
    contracting network converges in ``iters`` Newton steps of some 50 products. Past gain
    1 Newton-Krylov runs its ``max_iter`` steps of about ``0.11 dim`` products, and a path
    half its ``max_iter`` steps of 3.4 solves of ``0.21 dim`` products (paths that reach a
    point take a few hundred steps, those that fail run to the cap; rates measured on
    sparse ``random_rnn(n, 20 / n, 1.5)``). Each point's multipliers take some 840
    products."""
    per_mv = KRYLOV_OVERHEAD + (2.0 * period * s.nnz + 120.0 * s.dim) / FLOPS
    products = iters * 50.0 if excess == 0.0 else \
        _SEARCH_MAX_ITER * (0.11 + 0.5 * 3.4 * 0.21) * s.dim
    return Cost(bytes=_F8 * s.dim * (52 + 3 * starts) + 64.0 * s.nnz,
                seconds=(starts * products + 840) * per_mv + _figure(1.0),
                memory_key="starts", time_key="starts")


def _linalg_rate(n: int) -> float:
    """Flop/s of dense factorizations of order ``n``: overheads dominate small ones."""
    return LINALG_FLOPS * n / (n + 300.0)


def _newton_iterations(s: Sizes) -> tuple[float, float]:
    """Iterations per start of a fixed-point search, from the gain the spec gives.

    Contracting networks converge in a few; past gain 1 ever more starts wander until
    they give up (measured: about 10 per start at gain 1.2, 150 at gain 2). A held
    input mostly pins a network to one stable point: its effective gain counts less.
    """
    g = 1.5 if s.gain is None else s.gain
    excess = max(g - 1.0, 0.0) / (4.0 if s.driven else 1.0)
    return 8.0 + 150.0 * min(excess, 1.5) ** 2, excess


def _symmetry_labels(pts, m, tol=1e-6):
    """'origin', '± pair with #j' or '' for each point (x* and -x* both fixed points)."""
    p = pts[:, state_units(m)]  # the input block holds u, not -u
    norms = np.linalg.norm(p, axis=1)
    scale = max(1.0, float(norms.max(initial=0.0)))
    labels = []
    for i in range(p.shape[0]):
        j = np.flatnonzero(np.linalg.norm(p + p[i], axis=1) <= tol * scale)
        labels.append("origin" if norms[i] <= tol * scale
                      else f"± pair with #{int(j[0])}" if j.size else "")
    return labels


def _state_eigenvalues(fp, m):
    """``fp`` with the eigenvalues of the Jacobian on the state outside a driven map's
    input block: the input block's rows are zero (it holds the input, not a state), so
    the full Jacobian adds one exact zero per input unit that belongs to no dynamics."""
    if m.input_block is None or not np.asarray(fp.points).shape[0]:
        return fp
    keep = state_units(m)
    J = np.asarray(fp.jacobians)[:, keep][:, :, keep]
    ev = np.linalg.eigvals(J)
    ev = np.take_along_axis(ev, np.argsort(-np.abs(ev), axis=1, kind="stable"), axis=1)
    return dataclasses.replace(fp, eigenvalues=ev)


@report_kind(FixedPointsKind)
def fixed_points(cfg, ctx, out):
    m = ctx.nets[cfg.network]
    u = ctx.inputs[cfg.network]
    x0, escaped = fixed_point_starts(m, cfg.starts, u, ctx.rng)
    fp = _state_eigenvalues(find_fixed_points(m, x0, inputs=u, period=cfg.period), m)
    pts = np.asarray(fp.points)
    ev = np.asarray(fp.eigenvalues)
    stable = np.asarray(fp.stable, dtype=bool)
    n_uns = np.asarray(fp.n_unstable)
    _plot(out, f"fixed_points_{cfg.network}", f"Jacobian eigenvalues at the fixed points of "
          f"{cfg.network}, with the unit circle"
          + ("" if u is None else " (under the report's input)") + ".", plots.eigenvalues, fp,
          height=2.6)
    radius = np.abs(ev).max(axis=1) if ev.size else np.zeros(0)
    norms = np.linalg.norm(pts, axis=1) if pts.size else np.zeros(0)
    symmetry = _symmetry_labels(pts, m) if pts.size else []
    out.numbers.update(count=int(pts.shape[0]), stable=int(stable.sum()),
                       eigenvalues_per_point=int(ev.shape[1]) if ev.ndim == 2 else 0,
                       unconverged=int(fp.n_unconverged), starts=cfg.starts,
                       escaped=escaped,
                       max_residual=float(np.max(np.asarray(fp.residuals), initial=0.0)),
                       spectral_radius=radius.tolist(), n_unstable=n_uns.tolist(),
                       state_norm=norms.tolist(), symmetry=symmetry)
    shown = min(pts.shape[0], 20)
    out.table(f"Fixed points of {cfg.network}: {pts.shape[0]} distinct from {cfg.starts} "
              f"starts, {plots._plural(int(fp.n_unconverged), 'start')} unconverged"
              + ("" if shown == pts.shape[0] else f" (first {shown} shown)"),
              ["#", "|x*|", "spectral radius", "unstable directions", "stable", "symmetry"],
              [[i, "0" if symmetry[i] == "origin" else f"{norms[i]:.3g}", f"{radius[i]:.3g}",
                int(n_uns[i]), bool(stable[i]), symmetry[i] or "-"] for i in range(shown)])
    if escaped:
        out.note(f"{escaped} of {cfg.starts} sampled trajectories escaped to infinity within "
                 "20 steps; those starts are their initial draws plus noise, not visited "
                 "states.")
    if fp.n_unconverged:
        out.note(f"{fp.n_unconverged} of {cfg.starts} starts reached no fixed point within "
                 "the Newton iterations; the table lists the distinct points the other "
                 "starts found (often the same point from many starts).")
    if any(s.startswith("±") for s in symmetry):
        out.note("Points marked as a ± pair are x* and -x*: an odd activation without bias "
                 "makes the map symmetric under x -> -x, so its fixed points come in pairs "
                 "with the same spectrum.")


class Lyapunov(AnalysisModel):
    """The top-k Lyapunov spectrum from a few starts, with its convergence."""

    kind: Literal["lyapunov"]
    network: Name
    steps: Count = 2000
    k: Count = 8
    transient: NonNegative = 200
    starts: Count = 4

    def check(self, spec, where):
        n = _known_dim(spec, self.network, tangent=True)
        # the default k is capped at the dimension when the analysis runs; a k given is not
        if n is not None and self.k > n and "k" in self.model_fields_set:
            driven = spec.networks[self.network].static_input_size() != 0
            raise SpecError(f"{where}.k: {self.k} exponents exceed the dimension {n} of "
                            f"{self.network}'s state" + (" outside its input block" if driven
                                                         else ""))

    def cost(self, sizes):
        s = sizes[self.network]
        k = min(self.k, s.dim)
        T = self.steps + self.transient
        qr = 4.0 * s.dim * k * k * self.starts / FLOPS
        return Cost(bytes=8 * _F8 * self.starts * s.dim * k,
                    seconds=T * (_step_cost(s, self.starts, k) + qr) + _figure(3.0),
                    memory_key="k")


def _kaplan_yorke_reason(exps, k, dim):
    if np.isnan(exps).any():
        return "not defined: an exponent is NaN"
    return (f"not determined by the {k} exponents computed: their partial sums stay "
            f"non-negative, so the dimension is at least {k} (of {dim}); raise k to find it")


@report_kind(Lyapunov)
def lyapunov(cfg, ctx, out):
    import matplotlib.pyplot as plt

    res = bounded_run(out, ctx, cfg, lambda m, x, u: lyapunov_spectrum(
        m, x, cfg.steps, k=min(cfg.k, m.dim - m.forced_size), transient=cfg.transient,
        inputs=u, rng=ctx.rng), starts=cfg.starts)
    fig = plots.lyapunov_panels(res, fig=plt.figure(figsize=(plots.COLUMN_WIDTHS[2], 2.6)))
    out.figure(f"lyapunov_{cfg.network}", fig,
               f"Lyapunov spectrum of {cfg.network} ({res.k} exponents, mean over "
               f"{cfg.starts} starts with standard errors) and the convergence of the "
               "estimates.")
    exps = np.asarray(res.exponents, dtype=float)
    err = np.asarray(res.stderr, dtype=float)
    dky = float(res.kaplan_yorke_dimension)
    reason = None if math.isfinite(dky) else _kaplan_yorke_reason(exps, res.k, res.dim)
    out.numbers.update(exponents=exps.tolist(), stderr=err.tolist(), starts=cfg.starts,
                       kaplan_yorke_dimension=dky if reason is None else None,
                       kaplan_yorke_reason=reason, entropy_rate=float(res.entropy_rate),
                       steps=cfg.steps, dim=res.dim)
    out.table(f"Lyapunov exponents of {cfg.network} (nats/step, mean ± std. error over "
              f"{cfg.starts} starts)", ["i", "exponent", "std. error"],
              [[i + 1, f"{e:.4f}", _fmt(s, ".1e")] for i, (e, s) in enumerate(zip(exps, err))])
    out.table("Derived", ["quantity", "value"],
              [["Kaplan-Yorke dimension", f"{dky:.3g}" if reason is None else "undetermined"],
               ["entropy rate (sum of positive exponents)", f"{float(res.entropy_rate):.4f}"]])
    if reason is not None:
        out.note(f"Kaplan-Yorke dimension {reason}.")


class LyapunovScan(AnalysisModel):
    """The largest exponent against the gain over an ensemble of random networks."""

    kind: Literal["lyapunov_scan"]
    network: Name
    gains: Gains
    steps: Count = 500
    k: Count = 1
    transient: NonNegative = 200
    seeds: Count = 6
    """Weight matrices in the ensemble (the first is the spec's network itself)."""
    starts: Count = 2
    """Starts per network."""
    threshold: Positive = 0.01
    """Nats/step: the largest exponent above which a network counts as chaotic."""
    needs = ("random_rnn",)

    def check(self, spec, where):
        _check_autonomous_scan(spec, self.network, where)
        top = float(np.max(gain_values(self.gains)))
        if top > MEAN_FIELD_MAX_GAIN:   # the mean-field curve drawn beside the ensemble's
            raise SpecError(f"{where}.gains: the mean-field reference takes gains up to "
                            f"{MEAN_FIELD_MAX_GAIN:g}, got {top:g}")

    def cost(self, sizes):
        s = sizes[self.network]
        rows = gain_count(self.gains) * self.starts
        T = (self.steps + self.transient) * self.seeds
        qr = 4.0 * s.dim * self.k ** 2 * rows / FLOPS
        return Cost(bytes=_F8 * (3 * s.nnz + 8 * rows * s.dim * self.k),
                    seconds=T * (_step_cost(s, rows, self.k) + qr) + _figure(1.5),
                    memory_key="gains")


def _mean_field_gain(threshold):
    """The gain where the mean-field exponent equals ``threshold`` (> 0, so above 1)."""
    from scipy.optimize import brentq

    return float(brentq(lambda g: mean_field_exponent(g) - threshold, 1.0, 10.0, xtol=1e-6))


def _ensemble_exponents(cfg, ctx, gains):
    """(seeds, starts, P, k) exponents and the spectral radius of each ensemble member."""
    from threadpoolctl import threadpool_limits

    net = ctx.net_spec(cfg.network)
    P, S = gains.size, cfg.starts
    exps = np.empty((cfg.seeds, S, P, cfg.k))
    radius = np.empty(cfg.seeds)
    for s in range(cfg.seeds):
        stream = rng_for(ctx.seed, "network", cfg.network) if s == 0 else \
            rng_for(ctx.seed, "network", cfg.network, "ensemble", s)
        base = itermap.random_rnn(net.n, gain=1.0, density=net.density,
                                  activation=net.activation, rng=stream)
        with threadpool_limits(1):  # a small eigenproblem: threads only cost
            W = np.asarray(base.block_matrix.to_dense())
            radius[s] = float(np.max(np.abs(np.linalg.eigvals(W))))
        x0 = ctx.rng.normal(size=(S, net.n)) * 0.5
        # every (start, gain) pair is one batch row
        scan = scan_of(gain_family(base), np.tile(gains, S), np.repeat(x0, P, axis=0),
                       cfg.steps, k=cfg.k, transient=cfg.transient)
        exps[s] = np.asarray(scan.exponents).reshape(S, P, cfg.k)
    return exps, radius


@report_kind(LyapunovScan)
def lyapunov_scan(cfg, ctx, out):
    net = ctx.net_spec(cfg.network)
    gains = gain_values(cfg.gains)
    exps, radius = _ensemble_exponents(cfg, ctx, gains)
    per_net = np.nanmean(exps[..., 0], axis=1)  # (seeds, P): each network's mean over starts
    M = cfg.seeds
    lam = np.nanmean(per_net, axis=0)
    se = np.nanstd(per_net, axis=0, ddof=1) / math.sqrt(M) if M > 1 else \
        np.nanstd(exps[0, :, :, 0], axis=0, ddof=1) / math.sqrt(cfg.starts) \
        if cfg.starts > 1 else np.full_like(lam, np.nan)
    tanh = net.activation == "tanh" and net.density == 1.0
    fine = np.linspace(min(gains.min(), 0.9), gains.max(), 400)
    mf = mean_field_exponent(fine) if tanh else None
    # the transition: where the ensemble mean first exceeds the threshold; a 95% interval
    # from resampling the networks (percentile bootstrap)
    crossing = first_crossing(gains, lam, cfg.threshold)
    each = [first_crossing(gains, row, cfg.threshold) for row in per_net]
    picks = ctx.rng.integers(0, M, size=(2000, M)) if M > 1 else []  # networks resampled
    boot = [first_crossing(gains, np.nanmean(per_net[p], axis=0), cfg.threshold) for p in picks]
    found = np.array([b for b in boot if b is not None])
    ci = [float(np.percentile(found, 2.5)), float(np.percentile(found, 97.5))] \
        if found.size >= 0.9 * max(len(boot), 1) and found.size else None
    g_mf = _mean_field_gain(cfg.threshold) if tanh else None

    fig, ax = _new_axes(1)
    for i, row in enumerate(per_net):
        ax.plot(gains, row, color="0.75", lw=0.6, label="each network" if i == 0 else "_")
    plots.lyapunov_scan({"values": gains, "exponents": lam[:, None], "stderr": se[:, None]},
                        ax=ax)
    if mf is not None:
        ax.plot(fine, np.maximum(mf, -5), color="k", lw=0.9, label="mean-field theory")
    if crossing is not None:
        ax.axvline(crossing, color="C3", lw=0.8, ls=":", label="estimated transition")
    if ci is not None:
        ax.axvspan(ci[0], ci[1], color="C3", alpha=0.12, lw=0, label="its 95% interval")
    ax.set_ylim(bottom=max(float(np.nanmin(per_net)) - 0.1, -5))
    # under the Axes: inside, the key of five entries covered the interval and the networks
    _legend_below(ax, ncol=2, fit=True)
    out.figure(f"lyapunov_scan_{cfg.network}", fig,
               f"Largest Lyapunov exponent of random tanh networks (n = {net.n}) against the "
               f"gain: mean over {M} weight matrices ({cfg.starts} starts each) with standard "
               "errors across networks, each network in grey, and the mean-field prediction "
               "on a fine grid (its kink at gain 1 is the transition for n -> infinity). "
               f"The dotted line and the band: the estimated transition (the ensemble's "
               f"exponent first above {cfg.threshold}) and its 95% interval.")
    out.numbers.update(
        gains=gains.tolist(), largest_exponent=lam.tolist(), stderr=se.tolist(),
        per_network=per_net.tolist(), spectral_radius=radius.tolist(),
        mean_field=None if not tanh else mean_field_exponent(gains).tolist(),
        mean_field_grid={"gains": fine.tolist(), "exponent": mf.tolist()} if tanh else None,
        threshold=cfg.threshold, transition_gain=crossing, transition_interval=ci,
        transition_per_network=each, mean_field_transition=1.0 if tanh else None,
        mean_field_gain_at_threshold=g_mf, n=net.n, steps=cfg.steps, seeds=M,
        starts=cfg.starts)
    out.table("Largest exponent against gain (nats/step; mean and std. error across "
              f"{M} networks)",
              ["gain", "largest exponent", "std. error"] + (["mean field"] if tanh else []),
              [[f"{g:.3g}", f"{v:.4f}", _fmt(float(s), ".1e")]
               + ([f"{r:.4f}"] if tanh else [])
               for g, v, s, r in zip(gains, lam, se, mean_field_exponent(gains)
                                     if tanh else gains)])
    out.table("Transition to chaos", ["quantity", "value"], [
        [f"gain where the ensemble's largest exponent exceeds {cfg.threshold}",
         _fmt(crossing, ".3f")],
        ["95% interval (bootstrap over networks)",
         "-" if ci is None else f"{ci[0]:.3f} – {ci[1]:.3f}"],
        ["each network", ", ".join("never" if c is None else f"{c:.2f}" for c in each)],
        ["spectral radius of W (gain 1), range over networks",
         f"{radius.min():.3f} – {radius.max():.3f}"],
        [f"mean-field gain where the exponent reaches {cfg.threshold}", _fmt(g_mf, ".3f")],
        ["mean-field transition (n -> infinity, lambda = 0)", "1" if tanh else "-"]])
    out.note(
        f"Why the estimate lies above 1. Mean-field theory puts the transition where the "
        f"largest exponent crosses zero, at gain 1, for n -> infinity and infinitely long "
        f"runs; three things move a measured one above it. The threshold: a finite run "
        f"cannot tell an exponent of zero (a limit cycle or torus) from a slightly positive "
        f"one, so chaos is declared above {cfg.threshold} nats/step"
        + ("" if g_mf is None else f", and even the mean-field exponent reaches that only "
                                   f"at gain {g_mf:.3f}")
        + f". Finite N: the "
        f"origin of a finite network loses stability at gain 1/rho(W) (rho between "
        f"{radius.min():.2f} and {radius.max():.2f} here), to fixed points, limit cycles "
        f"and tori whose largest exponent is at most 0, and chaos sets in only beyond "
        f"them; this window shrinks as n grows (Doyon et al. 1993; Cessac 1995), and it "
        f"differs from network to network, which is why the interval comes from "
        f"resampling networks rather than from one run. Finite time: each exponent is "
        f"averaged over {cfg.steps} steps after a transient of {cfg.transient}; close to the "
        f"transition orbits settle slowly and the spread of a small exponent's estimate is "
        f"comparable to the threshold.")


class OrbitDiagram(AnalysisModel):
    """The states one unit visits after a transient, against the gain."""

    kind: Literal["orbit_diagram"]
    network: Name
    gains: Gains
    transient: NonNegative = 300
    keep: Count = 40
    unit: NonNegative = 0
    needs = ("random_rnn",)

    def check(self, spec, where):
        _check_autonomous_scan(spec, self.network, where)
        n = spec.networks[self.network].n
        if self.unit >= n:
            raise SpecError(f"{where}.unit: unit {self.unit} does not exist (n = {n})")

    def cost(self, sizes):
        s = sizes[self.network]
        P = gain_count(self.gains)
        T = self.transient + self.keep
        return Cost(bytes=_F8 * (3 * s.nnz + (self.keep + 4) * P * s.dim),
                    seconds=T * _step_cost(s, P) + _figure(1.0) + 2e-5 * P * self.keep,
                    memory_key="gains", time_key="transient")


@report_kind(OrbitDiagram)
def orbit_diagram(cfg, ctx, out):
    net = ctx.net_spec(cfg.network)
    gains = gain_values(cfg.gains)
    base = itermap.random_rnn(net.n, gain=1.0, density=net.density, activation=net.activation,
                              rng=rng_for(ctx.seed, "network", cfg.network))
    x0 = ctx.rng.normal(size=net.n) * 0.5
    od = orbits_of(gain_family(base), gains, x0, transient=cfg.transient, keep=cfg.keep)
    _plot(out, f"orbit_diagram_{cfg.network}", f"States of unit {cfg.unit} visited after the "
          "transient, against the gain.", plots.orbit_diagram, od, component=cfg.unit,
          xlabel="gain $g$")
    s = od.states[:, :, cfg.unit]
    out.numbers.update(gains=gains.tolist(),
                       distinct_values=[int(np.unique(np.round(r, 6)).size) for r in s],
                       spread=np.nan_to_num(np.nanmax(s, 1) - np.nanmin(s, 1)).tolist())
