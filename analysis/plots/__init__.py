"""Figures for iterative maps and their analyses.

Every function takes the data or a result object (read by attribute, or by key for a
dict) and an optional ``ax``, and returns the Axes it drew on (the Figure for multi-panel
plots); none calls ``plt.show()``. Without ``ax`` each makes a figure with a tight
layout, so the keys under its Axes stay in a plain ``savefig``; an ``ax`` that is not one
Axes (the whole array from ``plt.subplots``, say) is a TypeError. Every key sits inside the
Axes or under them, never above: a panel title set afterwards stays clear. Exponents are
in nats per step, time in steps.
:func:`paper_style` sizes figures for a paper, :func:`save_figure` writes PDF and PNG.
One family to a module (the style in ``_style``, what they share in ``_common``).

Examples
--------
>>> import numpy as np
>>> from itermap import iterate, systems
>>> from itermap.analysis import plots
>>> traj = iterate(systems.henon(), np.array([0.1, 0.1]), 2000)
>>> ax = plots.trajectory(traj)
>>> ax.get_xlabel()
'state $x_{0}$'
"""

from __future__ import annotations

from ._basins import basins, continuation
from ._common import EXPONENT_UNIT, NEGATIVE, POSITIVE, _plural  # noqa: F401 (read outside)
from ._covariant import clv_angles, finite_time_histogram
from ._fixed_points import eigenvalues, fixed_points_pca
from ._graph import _AUTO_BLOCK_LEVEL, sparsity_graph  # noqa: F401 (private: the report)
from ._matrix import block_matrix
from ._memory import impulse_response, memory_capacity
from ._scans import lyapunov_scan, newton_lyapunov, orbit_diagram
from ._sequence import sequence_comparison
from ._spectrum import lyapunov_history, lyapunov_panels, lyapunov_spectrum
from ._style import COLUMN_WIDTHS, STYLE, paper_style, save_figure
from ._training import accuracy_vs_parameters, training_history
from ._trajectory import trajectory

__all__ = [
    "trajectory", "lyapunov_spectrum", "lyapunov_history", "lyapunov_panels", "eigenvalues",
    "impulse_response", "memory_capacity", "block_matrix", "sparsity_graph", "orbit_diagram",
    "lyapunov_scan", "paper_style", "save_figure", "STYLE", "COLUMN_WIDTHS", "training_history",
    "accuracy_vs_parameters", "fixed_points_pca", "clv_angles", "finite_time_histogram",
    "basins", "continuation", "newton_lyapunov", "sequence_comparison",
]
