"""The registry of report kinds: ``KINDS``, the decorator that fills it, what a kind gets.
Each kind module registers its kinds on import; the package imports every kind module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import get_args

import numpy as np

from ._models import AnalysisModel

__all__ = ["KINDS", "ReportKind", "report_kind", "Context", "Section"]


@dataclass(frozen=True)
class ReportKind:
    """A registry entry: the settings model and the function that runs them."""

    name: str
    model: type[AnalysisModel]
    run: Callable


#: ``{kind name: ReportKind}``, in the order the kinds are listed to users.
KINDS: dict[str, ReportKind] = {}


def report_kind(model: type[AnalysisModel]):
    """Decorator: register ``run(cfg, ctx, out)`` as the report kind of ``model``."""
    name = get_args(model.model_fields["kind"].annotation)[0]

    def register(run):
        KINDS[name] = ReportKind(name, model, run)
        return run

    return register


@dataclass
class Context:
    """What an analysis sees of the report: built maps, inputs, its random stream."""

    spec: object
    nets: dict
    inputs: dict  # {name: the one input of a driven network, or None}
    rng: np.random.Generator
    seed: int

    def net_spec(self, name):
        return self.spec.networks[name]


@dataclass
class Section:
    """What one analysis produces: numbers, tables, notes and figures."""

    numbers: dict = field(default_factory=dict)
    tables: list = field(default_factory=list)  # (caption, columns, rows)
    notes: list = field(default_factory=list)  # paragraphs of plain text
    figures: list = field(default_factory=list)  # (stem, figure, caption)

    def table(self, caption, columns, rows):
        self.tables.append((caption, list(columns), [list(r) for r in rows]))

    def note(self, text):
        self.notes.append(text)

    def figure(self, stem, fig, caption):
        self.figures.append((stem, fig, caption))
