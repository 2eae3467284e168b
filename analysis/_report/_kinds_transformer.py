"""The report kind ``transformer``: a transformer as an iterative map, and its looped form."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

import itermap
from itermap.analysis import fir_length, impulse_response, lyapunov_spectrum

from ._kinds import _F8, STEP_OVERHEAD, _fmt, _new_axes
from ._models import AnalysisModel, Cost, Count, NonNegative, Positive, SpecError
from ._registry import report_kind


def _random_layer(rng, T, d, heads, *, gain=1.0, attention_gain=1.0, norm_first=False,
                  activation="relu"):
    """A transformer encoder layer with Gaussian weights of variance ``gain^2 / fan_in``."""
    from itermap.block_functions import FeedForward, LayerNorm, SelfAttention, transformer_layer

    def w(*shape):
        return rng.normal(size=shape) / np.sqrt(shape[-1])

    a = attention_gain
    return transformer_layer(
        SelfAttention(a * w(3 * d, d), None, a * w(d, d), None, num_heads=heads, seq_len=T),
        FeedForward(gain * w(4 * d, d), None, gain * w(d, 4 * d), None, seq_len=T,
                    activation=activation),
        LayerNorm(np.ones(d), np.zeros(d), seq_len=T),
        LayerNorm(np.ones(d), np.zeros(d), seq_len=T), norm_first=norm_first)


class TransformerKind(AnalysisModel):
    """A stack of random encoder layers as a map, and a looped layer's largest exponent."""

    kind: Literal["transformer"]
    tokens: Count = 4
    width: Count = 16
    heads: Count = 2
    layers: Count = 3
    gains: Annotated[list[Positive], Field(min_length=1)] = [0.5, 1.0, 2.0, 3.0, 4.0, 6.0]
    seeds: Count = 4
    steps: Count = 300
    transient: NonNegative = 100

    def check(self, spec, where):
        if self.width % self.heads:
            raise SpecError(f"{where}.heads: the width {self.width} is not divisible by "
                            f"{self.heads} heads")

    def title(self):
        return (f"a transformer as an iterative map ({self.layers} layers, {self.tokens} "
                f"tokens of width {self.width}) and a looped layer's edge of chaos")

    def cost(self, sizes):
        n = self.tokens * self.width
        layer_flops = 2 * n * (4 * self.width + 8 * self.width) + 4 * self.tokens * n
        loops = len(self.gains) * self.seeds * (self.steps + self.transient)
        seconds = loops * (STEP_OVERHEAD * 40 + 3 * layer_flops / 1e9) + 1.0
        return Cost(bytes=_F8 * n * (self.layers + 1) * 64, seconds=seconds,
                    memory_key="width", time_key="steps")


@report_kind(TransformerKind)
def transformer(cfg, ctx, out):
    T, d, heads = cfg.tokens, cfg.width, cfg.heads
    seeds = ctx.rng.integers(0, 2**31, size=1 + cfg.seeds)
    rng = np.random.default_rng(seeds[0])
    stack = itermap.transformer_map([_random_layer(rng, T, d, heads, norm_first=bool(l % 2))
                                     for l in range(cfg.layers)])
    u = rng.normal(size=stack.input_size)
    resp = impulse_response(stack, stack.zeros(), cfg.layers + 2, inputs=u)
    norms = np.asarray(resp.norms).sum(axis=(1, 2))
    # at most the units outside the input block (one token of width 1: a single exponent)
    spec = lyapunov_spectrum(stack, stack.zeros(), steps=cfg.layers + 5, inputs=u,
                             k=min(3, stack.dim - stack.forced_size), transient=0, rng=rng)
    out.table("The stack as a map", ["layers L", "FIR length", "settle steps",
                                     "response after L steps", "λ1"],
              [[cfg.layers, fir_length(stack), stack.settle_steps, _fmt(float(norms[-1])),
                _fmt(float(spec.exponents[0]))]])
    lams = np.zeros((len(cfg.gains), cfg.seeds))
    for i, gain in enumerate(cfg.gains):
        for s in range(cfg.seeds):
            r = np.random.default_rng(seeds[1 + s])
            loop = itermap.looped_transformer_map(
                _random_layer(r, T, d, heads, gain=gain, activation="tanh"))
            res = lyapunov_spectrum(loop, r.normal(size=loop.dim), steps=cfg.steps,
                                    transient=cfg.transient, k=1,
                                    inputs=0.1 * r.normal(size=loop.dim), rng=r)
            lams[i, s] = res.exponents[0]
    med = np.median(lams, axis=1)
    fig, ax = _new_axes()
    ax.errorbar(cfg.gains, med, yerr=[med - lams.min(axis=1), lams.max(axis=1) - med],
                fmt="o-", capsize=3, label=f"median, range over {cfg.seeds} layers")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(xlabel="feed-forward gain", ylabel=r"largest exponent $\lambda_1$")
    ax.legend(loc="best")
    out.figure("looped_transformer", fig,
               "The largest Lyapunov exponent of a looped post-LN layer, h ← layer(h + e), "
               "against the gain of its tanh feed-forward weights: below zero the loop "
               "settles, above it is chaotic (the closing LayerNorm keeps it bounded).")
    out.numbers.update(gains=list(cfg.gains), exponents=lams.tolist(),
                       fir_length=fir_length(stack), response=norms.tolist())
    out.note("The stack's Jacobian is strictly block lower triangular: every perturbation "
             "is forgotten after L steps and every exponent is −∞, the MLP's story with "
             "nonlinear blocks. A pre-LN layer has no closing LayerNorm: looped, its "
             "residual stream grows by the input every loop and has no fixed point.")
