"""Report kinds for trained networks: the paper's equal-parameter comparison and the flip-flop."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .. import plots
from .._training import equal_parameter_comparison, flip_flop_analysis
from ._kinds import _figure, _fmt, _linalg_rate, _new_axes, _plot, _step_cost
from ._models import AnalysisModel, Cost, Count, Density, Name
from ._registry import report_kind


class TrainKind(AnalysisModel):
    """MLP against sparse maps at equal trainable parameters on digits (the paper's claim)."""

    kind: Literal["train"]
    hidden: Count = 64
    densities: list[Density] = Field(default=[0.5, 0.25, 0.1], min_length=1)
    seeds: Count = 3
    epochs: Count = 15
    steps: Count = 3

    def title(self):
        return "training: MLP against sparse maps at equal trainable parameters (digits)"

    def cost(self, sizes):
        # one digits epoch of a 64-hidden map on 3 steps: about 0.04 s of CPU (measured on
        # the trained_networks example, sparse maps included)
        per_epoch = 0.04 * (self.hidden / 64) * (self.steps / 3)
        models = 2 + len(self.densities)
        return Cost(bytes=50e6, seconds=models * self.seeds * self.epochs * per_epoch
                    + _figure(1.0), memory_key="hidden", time_key="epochs")


@report_kind(TrainKind)
def train(cfg, ctx, out):
    # the spec's seed picks the training seeds (seed 0: 0 .. seeds-1, as make_trained.py)
    seeds = [ctx.seed * cfg.seeds + s for s in range(cfg.seeds)]
    res = equal_parameter_comparison(hidden=cfg.hidden, densities=tuple(cfg.densities),
                                     seeds=seeds, epochs=cfg.epochs, steps=cfg.steps)
    _plot(out, "accuracy_vs_parameters", f"Test accuracy on digits (mean ± sd over {cfg.seeds} "
          f"seeds, {cfg.epochs} epochs, {cfg.steps} steps) against trainable parameters: the "
          "MLP, the continuum (dense lateral and recurrent blocks) and sparse R=p maps sized to "
          "the MLP's trainable count.", plots.accuracy_vs_parameters, res)
    acc = np.asarray(res.accuracy, dtype=float)
    params = np.asarray(res.params)
    secs = np.asarray(res.seconds, dtype=float)
    rows = [[name, int(np.round(np.mean(p))), f"{a.mean():.4f}",
             _fmt(float(a.std(ddof=1)) if a.size > 1 else None, ".4f"), f"{float(np.mean(t)):.2f}"]
            for name, a, p, t in zip(res.names, acc, params, secs)]
    out.numbers.update(names=list(res.names), accuracy=acc.tolist(),
                       trainable=np.asarray(params).tolist(), seconds=secs.tolist(),
                       seeds=cfg.seeds, epochs=cfg.epochs)
    out.table("Test accuracy at equal trainable parameters",
              ["model", "trainable", "accuracy", "sd", "seconds"], rows)


class FlipFlopKind(AnalysisModel):
    """A trained 3-bit flip-flop RNN: bit accuracy and its memory states (Sussillo & Barak)."""

    kind: Literal["flip_flop"]
    network: Name
    trials: Count = 64
    steps: Count = 300
    starts: Count = 512
    needs_input = True

    def cost(self, sizes):
        s = sizes[self.network]
        n = s.dim
        # fresh trials, then a fixed-point search whose starts converge in a few Newton steps
        search = self.starts * 8 * (2 * n ** 3 / 3 + 4 * n ** 2) / _linalg_rate(n)
        return Cost(bytes=8.0 * (self.starts * n * n + self.trials * self.steps * n),
                    seconds=0.1 + self.steps * _step_cost(s, self.trials) + search
                    + _figure(1.0), memory_key="starts", time_key="starts")


@report_kind(FlipFlopKind)
def flip_flop(cfg, ctx, out):
    net = ctx.nets[cfg.network]
    res = flip_flop_analysis(net, trials=cfg.trials, steps=cfg.steps, starts=cfg.starts,
                             rng=ctx.rng)
    fig, ax = _new_axes()
    hidden = res.hidden if res.hidden.shape[-1] == net.sizes[1] else net.read_block(res.hidden, 1)
    plots.fixed_points_pca({"points": net.read_block(res.points, 1),
                            "n_unstable": res.n_unstable}, hidden, ax=ax)
    out.figure(f"flip_flop_{cfg.network}", fig,
               f"Fixed points of {cfg.network} at zero input in the top two principal "
               "components of its trajectories (grey): stable points (one per bit pattern) "
               "and saddles with one unstable direction between them.")
    n_unstable = np.asarray(res.n_unstable)
    out.numbers.update(bit_accuracy=float(res.bit_accuracy), points=int(len(n_unstable)),
                       stable=int(np.sum(n_unstable == 0)),
                       saddles_one_unstable=int(np.sum(n_unstable == 1)),
                       patterns_of_stable_points=int(res.n_patterns))
    out.table(f"{cfg.network}: the flip-flop's memory states", ["quantity", "value"],
              [["bit accuracy on fresh trials", f"{float(res.bit_accuracy):.4f}"],
               ["fixed points found", len(n_unstable)],
               ["stable", int(np.sum(n_unstable == 0))],
               ["saddles (one unstable direction)", int(np.sum(n_unstable == 1))],
               ["bit patterns of the stable points", int(res.n_patterns)]])
