"""The report kind ``zoo``: the shipped model zoo's spectra and how well they predict accuracy."""

from __future__ import annotations

from typing import Literal

import numpy as np

from itermap import datasets

from .._spectra_table import spectra_table, spectrum_embedding
from ._kinds import STEP_OVERHEAD, _new_axes, _plot
from ._models import AnalysisModel, Cost, Count, NonNegative, SpecError
from ._registry import report_kind

ZOO_SIZE = 108  # networks per task in itermap.datasets.zoo()


class ZooKind(AnalysisModel):
    """The zoo of trained graph RNNs: accuracy against gain, spectra, held-out prediction."""

    kind: Literal["zoo"]
    task: Literal["flip_flop", "digits"] = "flip_flop"
    k: Count = 6
    splits: Count = 5
    steps: Count = 200
    transient: NonNegative = 50
    latent: Count = 2
    method: Literal["pca", "autoencoder"] = "pca"

    def title(self):
        return (f"the model zoo ({self.task}): do Lyapunov spectra predict the accuracy of "
                f"held-out networks?")

    def check(self, spec, where):
        if self.latent > self.k:  # the embedding's features are the k exponents
            raise SpecError(f"{where}.latent: {self.latent} latent dimensions exceed the "
                            f"k = {self.k} exponents they embed")

    def cost(self, sizes):
        # a zoo network has at most 50 units: the QR of a 50 x k frame per step dominates
        work = ZOO_SIZE * (self.steps + self.transient) * (STEP_OVERHEAD * 20 + 2e-5 * self.k)
        return Cost(bytes=8.0 * ZOO_SIZE * 50 * 50 * 4, seconds=work + 2.0, time_key="steps")


def _drive(task, n):
    if task == "flip_flop":
        return datasets.flip_flop(1, n, p=0.1, rng=0)[0][:, 0]
    x = datasets.digits()[0][0].reshape(8, 8)
    return np.tile(x, (n // 8 + 1, 1))[:n]


@report_kind(ZooKind)
def zoo(cfg, ctx, out):
    nets = datasets.zoo(cfg.task)
    acc = np.array([r["accuracy"] for r in nets])
    table = spectra_table([r["map"] for r in nets], inputs=_drive(cfg.task, cfg.steps +
                                                                  cfg.transient),
                          k=cfg.k, steps=cfg.steps, transient=cfg.transient,
                          executor="serial", seed=int(ctx.rng.integers(2 ** 31)))
    acc_ok = acc[table.index]
    embs = [spectrum_embedding(table, acc_ok, method=cfg.method, latent=cfg.latent, rng=ctx.rng)
            for _ in range(cfg.splits)]
    emb = embs[0]
    r2 = np.array([e.r2 for e in embs])
    rho = np.array([e.spearman for e in embs])
    fig, ax = _new_axes()
    for i, kind in enumerate(("er", "ws", "ba")):
        sel = np.array([r["kind"] == kind for r in nets])
        gains = np.array([r["gain"] for r in nets])[sel]
        ax.plot(gains + 0.04 * (i - 1), acc[sel], "o", ms=3, color=f"C{i}", label=kind)
    ax.set(xlabel="gain at initialisation", ylabel="test accuracy")
    ax.legend(frameon=False)
    out.figure(f"zoo_accuracy_{cfg.task}", fig, "Test accuracy of every zoo network against "
               "its initial gain, by graph kind (ER, Watts-Strogatz, Barabási-Albert).")
    _plot(out, f"zoo_prediction_{cfg.task}", f"Accuracy predicted from the {cfg.method} "
          f"embedding ({cfg.latent} dimensions) of the top-{cfg.k} driven Lyapunov spectra, "
          "against the true accuracy; filled: held-out networks (the first of "
          f"{cfg.splits} random splits).", emb.plot)
    out.numbers.update(task=cfg.task, networks=len(nets), failed=len(table.failures),
                       r2=r2.tolist(), spearman=rho.tolist(), accuracy=acc.tolist(),
                       spectra=table.spectra.tolist())
    out.table("Held-out prediction of accuracy from the spectra",
              ["networks", "held out", "splits", "R² (mean ± sd)", "Spearman ρ (mean ± sd)",
               "splits with R² > 0", "mean accuracy"],
              [[len(acc_ok), len(emb.test), cfg.splits, f"{r2.mean():.2f} ± {r2.std():.2f}",
                f"{np.nanmean(rho):.2f} ± {np.nanstd(rho):.2f}", int((r2 > 0).sum()),
                f"{acc.mean():.3f}"]])
    out.note("R² > 0 means the spectra predict the accuracy of held-out networks better "
             "than their mean does (Vogt et al., arXiv:2204.04876). The figures are those of "
             f"{cfg.splits} random splits into training and held-out networks; the "
             "networks are those of itermap.datasets.zoo(). The bottom of a spectrum holds "
             "the directions a saturated tanh unit contracts (exponents near -20), which "
             "swamp a linear embedding: hence the top k = 6 by default.")
