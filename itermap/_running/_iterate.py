"""Running a map forward: :func:`iterate` and its :class:`Trajectory`."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import check_choice, check_int, check_memory, one_namespace, plain_array
from .._core._result import Result
from .._core._types import Array, MapLike
from .._interop._io import saveable
from .._maps._map import DivergenceError, block_slice
from .._maps._protocol import as_map

__all__ = ["Trajectory", "iterate", "resolve_inputs"]

#: ``iterate``'s methods other than "sequential", ``{name: function}``; each registers
#: itself on import (:mod:`itermap._running._newton` adds "newton"), so this module imports none.
METHODS: dict[str, Callable[..., Trajectory]] = {}


@saveable
@dataclass
class Trajectory(Result):
    """States saved along a run of a map.

    Attributes
    ----------
    states : array of shape (n_saved, dim) or (n_saved, B, dim)
        The saved states, oldest first.
    times : array of int, shape (n_saved,)
        The step index of each saved state (0 is the start).
    sizes : list of int
        Block sizes of the state, for :meth:`block`.

    Examples
    --------
    >>> from itermap import iterate
    >>> from itermap.systems import linear
    >>> traj = iterate(linear(np.array([[0.5]])), np.array([8.0]), 3)
    >>> traj.states[:, 0], traj.times, traj.final, len(traj)
    (array([8., 4., 2., 1.]), array([0, 1, 2, 3]), array([1.]), 4)
    """

    _schema: ClassVar[dict[str, str]] = {
        "states": "float[T, ..., D]",
        "times": "int[T]",
        "sizes": "list[int]",
    }
    _dims: ClassVar[dict[str, str]] = {"T": "time", "D": "unit"}
    _coords: ClassVar[dict[str, str]] = {"time": "times"}

    states: Array
    times: Array
    sizes: list

    @property
    def final(self) -> Array:
        """The last saved state."""
        return self.states[-1, ...]

    def block(self, i: int) -> Array:
        """Block ``i`` of every saved state, shape ``(n_saved, ..., sizes[i])``."""
        return self.states[..., block_slice(self.sizes, i, "state")]

    def __len__(self) -> int:
        return int(self.states.shape[0])


def _check_finite(xp, x, step):
    # a NaN or inf anywhere makes the sum non-finite: one cheap reduction per step,
    # and the elementwise check only when the sum says something may be wrong
    if isinstance(x, np.ndarray):  # NumPy's own sum: the compat wrapper's costs ~10x more
        if math.isfinite(float(np.add.reduce(x, axis=None))):
            return
    elif bool(xp.isfinite(xp.sum(x))):
        return
    finite = xp.isfinite(x)
    if bool(xp.all(finite)):
        return  # the sum overflowed, not the state
    where = ""
    if x.ndim == 2:
        idx = np.flatnonzero(to_numpy(~xp.all(finite, axis=-1)))
        where = f" (trajectories {idx[:8].tolist()}{'...' if idx.size > 8 else ''})"
    raise DivergenceError(f"the state overflowed to inf or NaN at step {step}{where}")


def _itemsize(x) -> int:
    size = getattr(x.dtype, "itemsize", None)
    if size is None:  # an array-API dtype without NumPy's attributes
        try:
            size = np.dtype(str(x.dtype)).itemsize
        except TypeError:
            size = 8
    return int(size)


def state_bytes(x) -> int:
    """Bytes of one (batched) state like ``x``."""
    return math.prod(int(s) for s in x.shape) * _itemsize(x)


def resolve_inputs(map: MapLike, x: Array, inputs: Array | None,
                   steps: int) -> tuple[Array | None, Array | None]:
    """Split ``inputs`` for a run of ``steps`` steps from states ``x``.

    Parameters
    ----------
    map : Map
        The map; its ``input_block`` and ``input_size`` decide what is valid.
    x : array of shape (dim,) or (B, dim)
        The states the inputs drive.
    inputs : array or None
        None for an autonomous map; one input ``(n_in,)``, or ``(B, n_in)``
        for a batch, held constant; or a sequence ``(steps, n_in)`` for one
        state, ``(steps, B, n_in)`` for a batch.
    steps : int
        Length of the run: a sequence needs one input per step.

    Returns
    -------
    (constant, sequence)
        At most one is not None; both are None for an autonomous map.
        Inputs are moved to the states' backend and cast to their dtype.

    Raises
    ------
    ValueError
        Inputs to an autonomous map, none to a driven one, a shape that fits
        neither a constant nor a sequence of ``steps``, or NaN or inf.
    TypeError
        Inputs that are not a real array.

    Examples
    --------
    >>> from itermap import IterativeMap, resolve_inputs
    >>> m = IterativeMap(np.eye(3), sizes=[1, 2], input_block=0)
    >>> const, seq = resolve_inputs(m, np.zeros(3), np.ones((5, 1)), 5)
    >>> const is None, seq.shape
    (True, (5, 1))
    """
    map = as_map(map)
    x = map._check_state(x, "x")
    steps = check_int("steps", steps, 0)
    xp = namespace(x)
    n_in = map.input_size
    if n_in == 0:
        if inputs is not None:
            raise ValueError("inputs: the map is autonomous (input_size 0) but inputs were "
                             "given")
        return None, None
    if inputs is None:
        raise ValueError(f"inputs: the map is driven (input size {n_in}): pass inputs, one vector "
                         f"of length {n_in} or a sequence (steps, ..., {n_in})")
    inputs = plain_array("inputs", inputs)
    # host inputs for a GPU map are moved there (documented); other libraries are not mixed
    one_namespace(x=x, inputs=inputs, movable=True)
    if not hasattr(inputs, "shape"):
        if isinstance(inputs, str | bytes):
            raise TypeError(f"inputs must be an array, got {type(inputs).__name__}")
        try:
            inputs = xp.asarray(np.asarray(inputs, dtype=float))
        except (TypeError, ValueError) as err:
            raise TypeError(f"inputs must be a real array ({err})") from None
    elif backend_of(x) in ("numpy", "cupy") and backend_of(inputs) != backend_of(x):
        inputs = to_backend(inputs, backend_of(x))
    if inputs.ndim == 0 or inputs.shape[-1] != n_in:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} do not fit: the input block "
                         f"has size {n_in}")
    if not xp.isdtype(inputs.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"inputs must be real, got dtype {inputs.dtype}")
    if inputs.dtype != x.dtype:  # a step keeps the states' dtype: float64 inputs do not
        with np.errstate(over="ignore"):  # turn a float32 run into a float64 one
            inputs = xp.astype(inputs, x.dtype)
    if not bool(xp.all(xp.isfinite(inputs))):
        raise ValueError(f"inputs contain NaN or inf (in the states' dtype {x.dtype})")
    if inputs.ndim == 1 or inputs.ndim == x.ndim:
        if x.ndim == 2 and inputs.ndim == 2 and inputs.shape[0] != x.shape[0]:
            raise ValueError(f"inputs: constant inputs of shape {tuple(inputs.shape)} do not "
                             f"match the batch of {x.shape[0]} states")
        return inputs, None
    if inputs.ndim == x.ndim + 1:
        if inputs.shape[0] != steps:
            raise ValueError(f"inputs: an input sequence needs one input per step: got "
                             f"{inputs.shape[0]} inputs for {steps} steps")
        if x.ndim == 2 and inputs.shape[1] != x.shape[0]:
            raise ValueError(f"inputs: a sequence of shape {tuple(inputs.shape)} does not match "
                             f"the batch of {x.shape[0]} states")
        return None, inputs
    raise ValueError(f"inputs of shape {tuple(inputs.shape)} fit neither a constant input "
                     f"({n_in},) nor a sequence (steps, ..., {n_in})")


def _check_options(options):
    """Refuse keywords that no method of ``iterate`` takes, suggesting the close ones."""
    if not options:  # the common case: no signature read
        return
    own = [p for p in inspect.signature(iterate).parameters
           if p not in ("map", "x0", "newton_options")]
    extra = sorted({p for f in METHODS.values() for p, v in inspect.signature(f).parameters.items()
                    if v.kind is inspect.Parameter.KEYWORD_ONLY} - set(own))
    unknown = sorted(set(options) - set(extra))
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, own + extra, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(f"iterate got unknown keyword argument(s) {', '.join(hints)}; it takes "
                    f"{', '.join(own)}, and for method='newton' "
                    f"{', '.join(extra) or 'nothing else'}")


def iterate(map: MapLike, x0: Array, steps: int, *, inputs: Array | None = None, every: int = 1,
            keep: str = "all", method: str = "sequential", **newton_options: Any) -> Trajectory:
    """Iterate ``map`` from ``x0`` for ``steps`` steps.

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol.
    x0 : array of shape (dim,) or (B, dim)
        The start: one state or a batch.
    steps : int
        Number of steps (>= 0).
    inputs : array, optional
        For a driven map: one input ``(n_in,)`` or ``(B, n_in)`` held constant,
        or a sequence ``(steps, n_in)`` / ``(steps, B, n_in)`` with the input of
        each step.
    every : int
        Save every ``every``-th state (``keep="all"``).
    keep : {"all", "last"}
        ``"last"`` keeps only the final state: memory O(B * dim) whatever
        ``steps``.
    method : {"sequential", "newton"}
        ``"sequential"`` runs one step after another. ``"newton"`` solves the
        whole trajectory at once by Newton's method, each iteration one
        parallel scan over time (DEER; see :func:`itermap.newton_iterate`):
        fast for long runs of a contracting map on parallel hardware.
    **newton_options
        For ``method="newton"`` only: ``jacobian``, ``damping``, ``tol``,
        ``max_iter``, ``initial``, ``fallback``, ``chunk`` and ``max_cg`` of
        :func:`itermap.newton_iterate`.

    Returns
    -------
    Trajectory
        A :class:`~itermap.NewtonTrajectory` (a Trajectory with the
        iterations and residuals) for ``method="newton"``. ``states`` of
        shape ``(n_saved, ..., dim)``; with ``keep="all"`` the start and
        every ``every``-th step, with ``keep="last"`` the final state.

    Raises
    ------
    ValueError
        ``steps``: with ``keep="all"``, when the saved states would take more
        memory than the machine has (checked before the first step; the
        message gives the estimate); ``map``: a step that returns another shape.
    TypeError
        A keyword that no method takes (the message suggests the close valid
        one), or a Newton option without ``method="newton"``.
    DivergenceError
        When a state overflows to inf or NaN; the message names the step.
    NewtonConvergenceError
        ``method="newton"`` only: Newton did not converge (and no fallback was asked).

    Notes
    -----
    For a map on a torus (:attr:`Map.periods`), every state after the start
    is wrapped onto ``[0, P)`` in its periodic coordinates.
    When only the last state is kept, the input is constant and the map's
    block graph is acyclic (an MLP, say), the state after at least as many
    steps as the longest chain of blocks no longer depends on the start; it
    is then computed by one sweep over the blocks in topological order, at
    the cost of one forward pass.

    Examples
    --------
    >>> from itermap import iterate
    >>> from itermap.systems import logistic
    >>> traj = iterate(logistic(2.0), np.array([0.1]), 3)
    >>> traj.states[:, 0]
    array([0.1    , 0.18   , 0.2952 , 0.41611...])
    """
    _check_options(newton_options)
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1, maximum=None)  # a stride past the run: x_0
    keep = check_choice("keep", keep, ("all", "last"))
    if method != "sequential" and method in METHODS:
        return METHODS[method](map, x0, steps, inputs=inputs, every=every, keep=keep,
                               **newton_options)
    check_choice("method", method, ("sequential", *METHODS))
    if newton_options:
        raise TypeError(f"iterate got options {sorted(newton_options)} that only "
                        f"method='newton' takes")
    map = as_map(map)
    x = map.check_start(x0)
    xp = namespace(x)
    constant, sequence = resolve_inputs(map, x, inputs, steps)
    sizes = list(map.sizes)
    if keep == "all":  # before the first step: a run that cannot fit is refused at once
        n_saved = steps // every + 1
        # counted twice: the states are gathered one by one, then stacked into one array
        check_memory("steps", 2 * n_saved * state_bytes(x),
                     f"the {n_saved} states that keep='all' saves with every={every} "
                     f"({state_bytes(x)} bytes each; keep='last' keeps one)")

    depth = getattr(map, "settle_steps", None)
    if keep == "last" and sequence is None and depth is not None and steps >= depth:
        final = map.settled_state(x, constant)
        _check_finite(xp, final, steps)
        return Trajectory(final[None, ...], np.array([steps]), sizes)

    saved, times = [], []
    # NumPy states go straight into one preallocated array: no list of every state kept
    # alive and stacked (a second copy) at the end
    out = np.empty((steps // every + 1, *x.shape), dtype=x.dtype) if keep == "all" and \
        isinstance(x, np.ndarray) else None
    if keep == "all":
        if out is not None:
            out[0] = x
        else:
            saved.append(x)
        times.append(0)
    on_torus = map.periods is not None  # each step wrapped onto [0, P)
    # after one checked step, a map may step its own (checked) states on checked inputs
    # without checking them again: the per-step checks cost a small map ~10 % of a step
    trusted = getattr(map, "_unchecked_step", None)
    fast = trusted() if callable(trusted) else None
    shape = x.shape
    for k in range(steps):
        u = constant if sequence is None else sequence[k, ...]
        x = map.step(x, u) if k == 0 or fast is None else fast(x, u)
        if k == 0 and x.shape != shape:  # else it broadcasts into the saved states unseen
            raise ValueError(f"map: step returned shape {tuple(x.shape)} for states of "
                             f"shape {tuple(shape)}")
        if on_torus:
            x = map.wrap(x)
        _check_finite(xp, x, k + 1)
        if keep == "all" and (k + 1) % every == 0:
            if out is not None and not saved and x.dtype == out.dtype:
                out[len(times)] = x
            else:
                saved.append(x)
            times.append(k + 1)
    if keep == "last":
        saved, times = [x], [steps]
    elif out is not None:
        if saved:  # a step changed the dtype: the rest as returned
            out = np.concatenate([out[:len(times) - len(saved)].astype(np.result_type(
                out, *saved)), np.stack(saved)])
        return Trajectory(out, np.asarray(times, dtype=np.int64), sizes)
    return Trajectory(xp.stack(saved), np.asarray(times, dtype=np.int64), sizes)
