"""Report kind for reservoirs: the edge of chaos of leaky tanh reservoirs over an ensemble."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from .._reservoir import edge_of_chaos_scan
from ._kinds import _F8, FLOPS, STEP_OVERHEAD, _fmt, _new_axes
from ._models import (
    AnalysisModel,
    Cost,
    Count,
    Gains,
    Name,
    NonNegative,
    SpecError,
    gain_count,
    gain_values,
)
from ._registry import report_kind

Leak = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Scale = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class EdgeOfChaosKind(AnalysisModel):
    """The largest exponent of leaky tanh reservoirs against spectral radius and leak."""

    kind: Literal["edge_of_chaos"]
    network: Name
    """A random_rnn network: its size and density make the ensemble's reservoirs."""
    radii: Gains
    """Spectral radii of the recurrent weights (a list or {start, stop, num})."""
    leaks: list[Leak] = Field(default=[0.1, 0.3, 1.0], min_length=1)
    """Leak rates in (0, 1]."""
    seeds: Count = 4
    """Reservoirs in the ensemble."""
    steps: Count = 500
    transient: NonNegative = 200
    input_scale: Scale = 0.0
    """Amplitude of the i.i.d. uniform input (0: undriven reservoirs)."""
    needs = ("random_rnn",)

    def title(self):
        return f"edge of chaos (leaky tanh reservoirs like {self.network})"

    def check(self, spec, where):
        if float(np.min(gain_values(self.radii))) <= 0:
            raise SpecError(f"{where}.radii: spectral radii must be > 0")
        net = spec.networks[self.network]
        if net.n < 2:  # edge_of_chaos_scan's reservoirs need n >= 2
            raise SpecError(f"{where}.network: the reservoirs need at least 2 units, "
                            f"{self.network} has n = {net.n}")
        if net.activation != "tanh":
            raise SpecError(f"{where}.network: edge_of_chaos runs tanh reservoirs; "
                            f"{self.network} has activation {net.activation!r}")

    def cost(self, sizes):
        n = sizes[self.network].dim
        rows = gain_count(self.radii) * len(self.leaks)
        per_step = STEP_OVERHEAD * 4 + 4.0 * n * n * rows / FLOPS
        return Cost(bytes=_F8 * (3 * n * n + 6 * rows * n),
                    seconds=self.seeds * (self.steps + self.transient) * per_step,
                    memory_key="radii")


@report_kind(EdgeOfChaosKind)
def edge_of_chaos(cfg, ctx, out):
    net = ctx.net_spec(cfg.network)
    radii = gain_values(cfg.radii)
    scan = edge_of_chaos_scan(radii, cfg.leaks, n=net.n, density=net.density,
                              seeds=cfg.seeds, steps=cfg.steps, transient=cfg.transient,
                              input_scale=cfg.input_scale, rng=ctx.rng)
    fig, ax = _new_axes(1)
    for i, a in enumerate(scan.leaks):
        color = f"C{i}"
        se = np.nan_to_num(scan.stderr[i])
        ax.plot(radii, scan.mean[i], color=color, marker="o", ms=2.5, lw=1.0, label=f"a = {a:g}")
        ax.fill_between(radii, scan.mean[i] - se, scan.mean[i] + se, color=color, alpha=0.2,
                        lw=0)
        # the origin's rate, ln of the effective spectral radius: the exponent where it is stable
        origin = np.log(scan.effective_radius[:, i].mean(axis=0))
        ax.plot(radii, np.where(origin <= 0, origin, np.nan), color=color, lw=0.7, ls="--",
                label=r"$\ln \rho_{\rm eff}$" if i == 0 else "_")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel(r"spectral radius $\rho$ of $W$")
    ax.set_ylabel(r"largest exponent $\lambda_1$ (nats/step)")
    ax.set_ylim(bottom=max(float(np.min(scan.mean)) - 0.05, -3))
    ax.legend(fontsize="small")
    driven = "undriven" if cfg.input_scale == 0 else f"driven by U(-{cfg.input_scale:g}, " \
        f"{cfg.input_scale:g}) input"
    out.figure("edge_of_chaos", fig,
               f"Largest Lyapunov exponent of leaky tanh reservoirs ({net.n} units, density "
               f"{net.density:g}, {driven}) against the spectral radius of W, one curve per "
               f"leak rate a: mean over {cfg.seeds} reservoirs with standard errors. Dashed: "
               "ln of the effective spectral radius max|eig((1 - a) I + a rho W)|, the exponent "
               "of the origin while it attracts.")
    out.numbers.update(radii=radii.tolist(), leaks=scan.leaks.tolist(),
                       largest_exponent=scan.mean.tolist(), stderr=scan.stderr.tolist(),
                       per_reservoir=scan.exponents.tolist(),
                       effective_radius=scan.effective_radius.mean(axis=0).tolist(),
                       edge=[None if np.isnan(e) else float(e) for e in scan.edge],
                       n=net.n, seeds=cfg.seeds, steps=cfg.steps, input_scale=cfg.input_scale)
    out.table("The edge of chaos per leak rate (the radius where the mean exponent first "
              "turns positive)", ["leak a", "edge radius", "largest exponent at the largest "
                                                           "radius"],
              [[f"{a:g}", _fmt(float(e), ".3f"), f"{scan.mean[i, -1]:.4f}"]
               for i, (a, e) in enumerate(zip(scan.leaks, scan.edge))])
    out.note("A leak a < 1 slows the map: near the origin its exponents are ln|1 - a + a "
             "rho lambda| over the eigenvalues lambda of W, so the effective radius crosses 1 "
             "where rho does, whatever a; past it the exponents scale roughly with a (a leaky "
             "map is an Euler step of a continuous-time network), and small finite reservoirs "
             "often settle on fixed points or cycles (exponent 0) before turning chaotic.")
