"""Phase portraits and time series of trajectories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_int
from ._common import _axes, _field, _finish, _np, _style

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def trajectory(traj: Any, *, dims: Sequence[int] = (0, 1), ax: Axes | None = None,
               time: bool = False, max_lines: int = 20, **kwargs: Any) -> Axes:
    """A phase portrait (or a time series) of a trajectory.

    Parameters
    ----------
    traj : Trajectory or array
        An :class:`itermap.Trajectory` (``states`` of shape ``(n, dim)`` or
        ``(n, B, dim)`` and ``times``) or the states array itself.
    dims : pair of int
        The two state components of the phase portrait. A one-dimensional
        map is drawn as its return plot ``x_{k+1}`` against ``x_k``.
    ax : matplotlib Axes, optional
    time : bool
        Plot the components ``dims`` against the step instead.
    max_lines : int
        At most this many trajectories of a batch are drawn.
    **kwargs
        Passed to ``ax.plot`` (default: small points, no lines, for the
        phase portrait).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``traj`` without ``states``, or ``dims`` that is not a pair of ints.
    ValueError
        States of the wrong shape, a component that does not exist, or not two
        components for a phase portrait.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import iterate, systems
    >>> from itermap.analysis import plots
    >>> traj = iterate(systems.logistic(3.9), np.array([0.3]), 200)
    >>> ax = plots.trajectory(traj)          # a 1-D map: x_{k+1} against x_k
    >>> ax.get_ylabel()
    'next state $x_{k+1}$'
    """
    bare = hasattr(traj, "ndim") or isinstance(traj, list | tuple)  # the states themselves
    states = _np(traj if bare else _field(traj, "states", param="traj"))
    states = states[:, None, :] if states.ndim == 2 else states
    if states.ndim != 3:
        raise ValueError(f"traj: states must have shape (n, dim) or (n, B, dim), got "
                         f"{states.shape}")
    n, B, dim = states.shape
    times = None if bare else _field(traj, "times", None, required=False)
    times = np.arange(n) if times is None else _np(times)
    if dims is None or isinstance(dims, str | bytes):
        raise TypeError(f"dims must be a pair of component indices, got {dims!r}")
    if np.ndim(dims) == 0:
        dims = [dims.item() if hasattr(dims, "item") else dims]  # type: ignore[list-item]
    dims = tuple(check_int("dims", d) for d in dims)
    if dim == 1 and not time:
        dims = ()  # the return plot
    for d in dims:
        if not -dim <= d < dim:
            raise ValueError(f"dims: component {d} does not exist: the state has dim {dim}")
    ax = _axes(ax)
    B = min(B, int(max_lines))
    if time:
        for c, d in enumerate(dims):  # one colour per component, one line per trajectory
            for b in range(B):
                style = _style(dict(color=f"C{c}", lw=0.8, alpha=1.0 if B == 1 else 0.7),
                               kwargs)
                ax.plot(times, states[:, b, d], label=f"$x_{{{d % dim}}}$" if b == 0 else "_",
                        **style)
        _finish(ax, "step $k$", "state component")
        if len(dims) > 1:
            ax.legend()
        return ax
    style = _style(dict(ls="none", marker=".", ms=1.5, alpha=0.7), kwargs)
    if dim == 1:
        for b in range(B):
            ax.plot(states[:-1, b, 0], states[1:, b, 0], label="_", **style)
        _few_x_ticks(ax)
        return _finish(ax, "state $x_k$", "next state $x_{k+1}$")
    if len(dims) != 2:
        raise ValueError(f"a phase portrait needs two components, got dims={dims}")
    i, j = dims
    for b in range(B):
        ax.plot(states[:, b, i], states[:, b, j], label="_", **style)
    _few_x_ticks(ax)
    return _finish(ax, f"state $x_{{{i % dim}}}$", f"state $x_{{{j % dim}}}$")


def _few_x_ticks(ax):
    """At most 6 x ticks: a tanh network's states, ticked -1.00, -0.75, ..., 1.00, ran into
    each other in a one-column figure."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
