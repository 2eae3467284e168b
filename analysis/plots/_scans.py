"""Parameter scans: orbit diagrams, Lyapunov exponents against a parameter, and the
parallel-in-time (Newton) evaluation of a scan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_int
from ._common import (
    EXPONENT_UNIT,
    _axes,
    _field,
    _finish,
    _floats,
    _legend_below,
    _np,
    _style,
    _zero_line,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


# -- parameter scans ---------------------------------------------------------------------
def orbit_diagram(od: Any, *, ax: Axes | None = None, component: int = 0,
                  xlabel: str = "parameter", **kwargs: Any) -> Axes:
    """A bifurcation (orbit) diagram: the states kept after the transient per parameter.

    Parameters
    ----------
    od : OrbitDiagram
        An object with ``values`` (P,) and ``states`` (P, keep, dim), as
        returned by :func:`itermap.analysis.orbit_diagram`.
    ax : matplotlib Axes, optional
    component : int
        The state component on the vertical axis.
    xlabel : str
        Name of the parameter.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``od`` without ``values`` or ``states``, a non-integer ``component``.
    ValueError
        States that do not match the values, a component that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import orbit_diagram, plots
    >>> od = orbit_diagram(systems.logistic, np.linspace(3.0, 4.0, 50), np.array([0.3]),
    ...                    transient=100, keep=20)
    >>> ax = plots.orbit_diagram(od, xlabel="$r$")
    >>> ax.get_lines()[0].get_xdata().shape
    (1000,)
    """
    values = _floats(od, "values", "od")
    states = _floats(od, "states", "od")
    states = states[..., None] if states.ndim == 2 else states
    if states.ndim != 3 or states.shape[0] != values.shape[0]:
        raise ValueError(f"states {states.shape} do not match values {values.shape}")
    component = check_int("component", component)
    if not -states.shape[2] <= component < states.shape[2]:
        raise ValueError(f"component {component} does not exist: the state has dim "
                         f"{states.shape[2]}")
    x = np.repeat(values, states.shape[1])
    y = states[:, :, component].reshape(-1)
    # a pixel per point for many points, small dots for fewer
    marker = dict(marker=".", ms=0.8) if x.size < 20000 else dict(marker=",")
    style = _style(dict(ls="none", color="k", alpha=0.6, **marker), kwargs)
    ax = _axes(ax)
    ax.plot(x, y, **style)
    _finish(ax, xlabel, f"state $x_{{{component % states.shape[2]}}}$ (after transient)")
    if values.max() > values.min():  # one value: the autoscaled limits around it (equal
        # limits warned that the transformation is singular)
        ax.set_xlim(values.min(), values.max())
    return ax


def lyapunov_scan(scan: Any, *, ax: Axes | None = None, xlabel: str = "gain $g$",
                  reference: Any = None, reference_label: str = "theory",
                  reference_values: Any = None, all_exponents: bool = False,
                  **kwargs: Any) -> Axes:
    """The largest Lyapunov exponent against a parameter, with the zero line.

    Parameters
    ----------
    scan : LyapunovScan
        An object with ``values`` (P,), ``exponents`` (P, k) and optionally
        ``stderr`` (P, k), as returned by :func:`itermap.analysis.lyapunov_scan`.
    ax : matplotlib Axes, optional
    xlabel : str
        Name of the parameter.
    reference : array, optional
        A prediction to draw as a dashed black line (e.g. the mean-field
        exponent): shape (P,) at the scan's values, or any length with
        ``reference_values``.
    reference_label : str
    reference_values : array, optional
        The parameter values of ``reference``, for a curve on a finer grid
        than the scan (a kink, such as the mean field's at gain 1, then shows).
    all_exponents : bool
        Also draw the other exponents (lighter).
    **kwargs
        Passed to the largest exponent's ``errorbar`` (``label=`` names the
        scan where two share an Axes; ``color``, ``marker``, ...).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``scan`` without ``values`` or ``exponents``.
    ValueError
        Exponents that do not match the values, a ``reference`` that matches
        neither the values nor ``reference_values``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import mean_field_exponent, plots
    >>> g = np.array([0.5, 1.0, 2.0])
    >>> scan = {"values": g, "exponents": np.log(g)[:, None]}
    >>> ax = plots.lyapunov_scan(scan, reference=mean_field_exponent(g))
    >>> ax.get_xlabel()
    'gain $g$'
    """
    values = _floats(scan, "values", "scan")
    exps = _floats(scan, "exponents", "scan")
    exps = exps[:, None] if exps.ndim == 1 else exps
    if exps.ndim != 2 or exps.shape[0] != values.shape[0]:
        raise ValueError(f"exponents {exps.shape} do not match values {values.shape}")
    err = _field(scan, "stderr", None, required=False)
    err = None if err is None else _np(err).reshape(exps.shape)
    ax = _axes(ax)
    if all_exponents:
        for i in range(1, exps.shape[1]):
            ax.plot(values, exps[:, i], color="0.6", lw=0.7,
                    label="other exponents" if i == 1 else "_")
    # a label= of the caller's names the scan (two scans on one Axes)
    ax.errorbar(values, exps[:, 0], yerr=None if err is None else err[:, 0],
                **_style(dict(marker="o", ms=3, lw=1.0, label=r"largest exponent $\lambda_1$"),
                         kwargs))
    if reference is not None:
        ref = np.asarray(_np(reference), dtype=float)
        ref_x = values if reference_values is None else np.asarray(_np(reference_values),
                                                                   dtype=float)
        if ref.shape != ref_x.shape:
            raise ValueError(f"reference has shape {ref.shape}; expected {ref_x.shape} "
                             f"(the scan's values, or reference_values)")
        ax.plot(ref_x, ref, ls="--", color="k", lw=1.0, label=reference_label)
    _zero_line(ax)
    return _finish(ax, xlabel, f"Lyapunov exponent ({EXPONENT_UNIT})", legend="small")


# -- parallel-in-time evaluation ----------------------------------------------------------------
def newton_lyapunov(scan: Any, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Newton iterations to convergence against the largest Lyapunov exponent.

    Converged runs filled, the others open on the line at ``T``; colour is the gain.

    Parameters
    ----------
    scan : NewtonLyapunovScan
        An object with ``gains`` (G,), ``lyapunov`` (G, trials), ``iterations``
        (G, trials), ``converged`` (G, trials) and ``steps``, as returned by
        :func:`itermap.analysis.newton_lyapunov_scan`.
    ax : matplotlib Axes, optional
    **kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For ``lyapunov``, ``iterations`` and ``converged`` of different shapes, or
        not ``(gains, trials)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> scan = {"gains": np.array([0.5, 2.5]), "lyapunov": np.array([[-0.6], [0.2]]),
    ...         "iterations": np.array([[4], [128]]), "converged": np.array([[True], [False]]),
    ...         "steps": 128}
    >>> ax = plots.newton_lyapunov(scan)
    >>> ax.get_ylabel()
    'Newton iterations'
    """
    gains = _np(_field(scan, "gains", param="scan")).astype(float).ravel()
    lyap = _np(_field(scan, "lyapunov", param="scan")).astype(float)
    iters = _np(_field(scan, "iterations", param="scan")).astype(float)
    conv = _np(_field(scan, "converged", param="scan")).astype(bool)
    steps = int(_field(scan, "steps", param="scan"))
    if lyap.ndim == 1:
        lyap, iters, conv = lyap[:, None], iters[:, None], conv[:, None]
    if not (lyap.shape == iters.shape == conv.shape) or lyap.shape[0] != gains.size:
        raise ValueError(f"lyapunov {lyap.shape}, iterations {iters.shape} and converged "
                         f"{conv.shape} must share the shape (gains={gains.size}, trials)")
    ax = _axes(ax)
    g = np.broadcast_to(gains[:, None], lyap.shape)
    vmin, vmax = float(gains.min()), float(gains.max())
    kw = _style(dict(s=18, cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1),
                kwargs)
    points = ax.scatter(lyap[conv], iters[conv], c=g[conv], label="converged", **kw)
    if np.any(~conv):
        open_kw = {k: v for k, v in kw.items() if k not in ("cmap", "vmin", "vmax", "c")}
        ax.scatter(lyap[~conv], iters[~conv], facecolors="none", edgecolors="k",
                   label=f"not converged in T={steps}", **open_kw)
    ax.axhline(steps, color="0.5", ls="--", lw=0.8, label=f"T = {steps} (exact after T)")
    _zero_line(ax, orientation="v")
    ax.set_yscale("log")
    _finish(ax, rf"largest Lyapunov exponent $\lambda_1$ ({EXPONENT_UNIT})", "Newton iterations")
    if np.any(conv):  # in an inset beside the Axes: a layout counts it with them, and a
        # constrained figure holding no colour bar of its own may still turn tight
        cax = ax.inset_axes((1.04, 0.0, 0.045, 1.0))
        ax.figure.colorbar(points, cax=cax, label="gain $g$")
    # below the x label: off the data (its marker is not read as a point) and out of the
    # title's way (a title does not move above a legend); one column: a key wider than the
    # Axes would push the colour bar away from them
    _legend_below(ax, ncol=1)
    return ax
