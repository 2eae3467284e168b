"""The report kind ``sequence_models``: an MLP, an RNN, a deep LSSL and attention side by side."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import plots
from .._sequence import compare_sequence_models
from ._kinds import _F8, STEP_OVERHEAD, _fmt, _plot
from ._models import AnalysisModel, Cost, Count, SpecError
from ._registry import report_kind


class SequenceModelsKind(AnalysisModel):
    """Four sequence models of one size on the continuum: impulse, memory, spectrum."""

    kind: Literal["sequence_models"]
    units: Count = 16
    steps: Count = 40
    max_delay: Count = 20
    mc_steps: Count = 3000
    lyapunov_steps: Count = 500

    def check(self, spec, where):
        # memory_capacity fits a readout of the largest state (the deep LSSL's 2 (units // 2)
        # + 2 units) on half the samples after its washout of 100 steps and the largest delay
        units = 2 * (self.units // 2) + 2
        need = max(100, self.max_delay) - 1 + 2 * (units + 2)
        if self.mc_steps < need:
            raise SpecError(f"{where}.mc_steps: {self.mc_steps} steps leave too few samples to "
                            f"fit a readout of {units} units; use mc_steps >= {need}")

    def title(self):
        return (f"sequence models on the continuum (MLP, RNN, deep LSSL, attention; about "
                f"{self.units} state units each)")

    def cost(self, sizes):
        steps = 3 * self.steps + self.mc_steps + self.lyapunov_steps
        work = 4 * steps * (STEP_OVERHEAD * 8 + 2.0 * self.units ** 3 / 2e9)
        return Cost(bytes=_F8 * 4 * (self.mc_steps + 1) * (self.units + 4) * 3,
                    seconds=work + 1.0, memory_key="mc_steps", time_key="mc_steps")


@report_kind(SequenceModelsKind)
def sequence_models(cfg, ctx, out):
    r = compare_sequence_models(units=cfg.units, steps=cfg.steps, max_delay=cfg.max_delay,
                                mc_steps=cfg.mc_steps, lyapunov_steps=cfg.lyapunov_steps,
                                rng=ctx.rng)
    captions = {
        "impulse": "Response of the whole state to an impulse in the first hidden block, "
                   "relative to the impulse: the MLP forgets after its depth (a finite "
                   "response), the RNN decays exponentially, the HiPPO-LegS layers slowly, "
                   "and attention's unnormalised state [a; c; m] keeps it whole.",
        "memory": "Memory capacity per delay (held-out r²): what a linear readout of the "
                  "state recovers of the input d steps back. Attention's state is a running "
                  "weighted sum of one value direction and recovers almost nothing.",
        "spectrum": "Top Lyapunov exponents along the driven trajectory (open markers: −∞, "
                    "an exact collapse).",
    }
    for panel, caption in captions.items():
        _plot(out, f"sequence_{panel}", caption, plots.sequence_comparison, r, panel)
    out.numbers.update(
        names=list(r.names), dims=list(r.dims), capacity=list(r.capacity),
        impulse=np.asarray(r.impulse).tolist(), r2=np.asarray(r.r2).tolist(),
        exponents=np.asarray(r.exponents).tolist())
    half = cfg.steps // 2
    rows = [[name, dim, _fmt(float(r.impulse[i, half])), f"{r.capacity[i]:.2f}",
             _fmt(float(r.exponents[i, 0]), ".3f")]
            for i, (name, dim) in enumerate(zip(r.names, r.dims))]
    out.table("The four families side by side", ["model", "state size",
              f"impulse at k = {half}", "memory capacity", "λ1"], rows)
    out.note("Each model is driven by one i.i.d. scalar signal. The deep LSSL is an "
             "MLP's block pattern with linear recurrent blocks on the diagonal "
             "(itermap.deep_lssl); attention is the AttentionRNN of Feng et al.")
