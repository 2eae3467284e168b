"""The base of itermap's results: a status, tables, labelled arrays and a Jupyter display.

A result is a small dataclass (most are ``@saveable``). Subclassing :class:`Result`
gives it, from class-level declarations, ``result`` and ``message`` (a :class:`Status`
code and a sentence that says the fix, where a result can fail in part; the model is
diffrax's ``RESULTS``), :meth:`Result.to_pandas`, :meth:`Result.to_xarray` and
``_repr_html_``. pandas and xarray are optional (``pip install 'itermap[tables]'``).
"""

from __future__ import annotations

import dataclasses
import enum
import html
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._interop._codec import _is_array, _short
from .._interop._schema import _parse
from ._backend import to_numpy

__all__ = ["Result", "Status", "Check"]

_EXTRA = "tables"


class Status(enum.IntEnum):
    """What became of a computation that can fail in part (``Result.result``).

    Examples
    --------
    >>> from itermap import Status
    >>> Status.SUCCESS, bool(Status.SUCCESS), Status.MAX_ITERATIONS.name
    (<Status.SUCCESS: 0>, False, 'MAX_ITERATIONS')
    """

    SUCCESS = 0
    #: some solves or starts ran out of iterations
    MAX_ITERATIONS = 1
    #: some solves or starts stopped improving
    STALLED = 2
    #: some values turned NaN or infinite
    NONFINITE = 3
    #: rounding limits the accuracy of some numbers
    IMPRECISE = 4
    #: a fast method failed and a slower one was run instead
    FELL_BACK = 5
    #: some points of a sweep raised
    POINTS_FAILED = 6
    #: stopped before the end that was asked for
    STOPPED = 7


@dataclasses.dataclass(frozen=True)
class Check:
    """One way a result can fail in part: ``field`` counts the failures.

    Attributes
    ----------
    field : str
        The field that records them. By default an int counts them, a bool
        or a bool array counts its False entries, a list or a string its
        length (a string is the reason a run stopped).
    code : Status
        The code when there is at least one.
    message : str
        What to do about it; ``{n}`` is the count, ``{name}`` any plain field.
    count : callable, optional
        ``count(value) -> int`` in place of the default.

    Examples
    --------
    >>> from itermap import Check, Status
    >>> Check("n_unconverged", Status.MAX_ITERATIONS, "{n} starts gave up").failures(3)
    3
    """

    field: str
    code: Status
    message: str
    count: Callable[[Any], int] | None = None

    @staticmethod
    def equal_to(code: int) -> Callable[[Any], int]:
        """A ``count`` for an array of codes: how many entries are ``code`` (None: 0).

        Parameters
        ----------
        code : int
            The code to count.

        Returns
        -------
        callable
            ``count(value) -> int``.

        Examples
        --------
        >>> from itermap import Check
        >>> Check.equal_to(2)(np.array([0, 2, 2, 3]))
        2
        """
        def count(value) -> int:
            return 0 if value is None else int(np.sum(np.asarray(to_numpy(value)) == code))
        return count

    def failures(self, value: Any) -> int:
        """How many failures ``value`` (the field's value) records.

        Parameters
        ----------
        value : object
            The value of the field ``field`` of a result.

        Returns
        -------
        int

        Examples
        --------
        >>> from itermap import Check, Status
        >>> Check("converged", Status.MAX_ITERATIONS, "").failures(np.array([True, False]))
        1
        """
        if self.count is not None:
            return int(self.count(value))
        if value is None:
            return 0
        if isinstance(value, bool | np.bool_):
            return int(not value)
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, str | list | tuple):
            return len(value)
        a = np.asarray(to_numpy(value))
        return int(np.sum(~a)) if a.dtype == bool else int(np.count_nonzero(a))


def _need(module: str, what: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {module}, which is not installed: "
                          f"pip install 'itermap[{_EXTRA}]' (or pip install {module})") from exc


def _array_axes(spec: str | None, ndim: int):
    """The axis names of the array alternative of a ``_schema`` spec (None: no spec)."""
    if spec is None:
        return None
    node = _parse(spec)
    for alt in node[1] if node[0] == "or" else (node,):
        if alt[0] == "array":
            axes = list(alt[2])
            if "..." in axes:
                i = axes.index("...")
                n = ndim - len(axes) + 1
                axes[i:i + 1] = ["..."] * max(n, 0)
            if len(axes) == ndim:
                return axes
    return None


class _Fields(dict):
    """Fields for a message; one that is not a plain value reads as "?" (never a KeyError)."""

    def __missing__(self, key):
        return "?"

    def __getitem__(self, key):
        value = dict.get(self, key, "?")
        return value if isinstance(value, int | float | str | np.number) else str(value)


class Result:
    """Base class of itermap's results (dataclasses): status, tables, arrays, display.

    A subclass declares, as class attributes, ``_checks`` (how it can fail in
    part: each :class:`Check` counts the failures a field records), ``_table``
    (the fields of its table), ``_schema`` (field -> the type and shape that
    :func:`itermap.load` checks in a file, see ``itermap/_interop/_schema.py``),
    ``_dims`` (schema axis letter -> dimension name) and ``_coords`` (dimension
    -> the field of its coordinate).

    Examples
    --------
    >>> import itermap
    >>> traj = itermap.iterate(itermap.systems.henon(), np.array([0.1, 0.1]), 3)
    >>> isinstance(traj, itermap.Result), traj.result, traj.message
    (True, <Status.SUCCESS: 0>, '')
    """

    _checks: ClassVar[tuple[Check, ...]] = ()
    _table: ClassVar[tuple[str, ...]] = ()
    _long: ClassVar[tuple[str, ...]] = ()  # fields of one shape: a row per entry (a grid)
    _dims: ClassVar[dict[str, str]] = {}
    _coords: ClassVar[dict[str, str]] = {}

    # -- status ---------------------------------------------------------------------
    def _failed_checks(self):
        for check in self._checks:
            n = check.failures(getattr(self, check.field))
            if n > 0:
                yield check, n

    @property
    def result(self) -> Status:
        """The :class:`Status` of the first check that failed; ``SUCCESS`` otherwise.

        Examples
        --------
        >>> import itermap
        >>> itermap.iterate(itermap.systems.henon(), np.zeros(2), 2).result
        <Status.SUCCESS: 0>
        """
        return next((c.code for c, _ in self._failed_checks()), Status.SUCCESS)

    @property
    def message(self) -> str:
        """What failed and how to fix it ("" on success).

        Examples
        --------
        >>> import itermap
        >>> itermap.iterate(itermap.systems.henon(), np.zeros(2), 2).message
        ''
        """
        plain = _Fields({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
                        if dataclasses.is_dataclass(self) else {})
        out = []
        for check, n in self._failed_checks():
            plain["n"] = n
            out.append(check.message.format_map(plain))
        return "; ".join(out)

    # -- pandas ---------------------------------------------------------------------
    def _table_columns(self) -> dict:
        """{column: values} of the ``_table`` fields (None fields left out)."""
        cols: dict = {}
        for name in self._table:
            value = getattr(self, name)
            if value is None:
                continue
            if not _is_array(value):
                cols[name] = list(value)
                continue
            a = np.asarray(to_numpy(value))
            if a.ndim == 1:
                cols[name] = a
            elif a.ndim == 2:
                cols.update({f"{name}[{j}]": a[:, j] for j in range(a.shape[1])})
            else:
                cols[name] = list(a)
        return cols

    def to_pandas(self) -> Any:
        """The result's table as a :class:`pandas.DataFrame`, one row per item.

        A 2-D field (``m`` rows by ``k``) gives the columns ``name[0]`` .. ``name[k-1]``.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        TypeError
            When the result is not a table (use :meth:`to_xarray`).
        ImportError
            When pandas is not installed (``pip install 'itermap[tables]'``).

        Examples
        --------
        >>> import itermap
        >>> from itermap.analysis import find_fixed_points
        >>> fp = find_fixed_points(itermap.IterativeMap(np.array([[2.0]])),
        ...                        np.linspace(-1, 1, 9)[:, None])
        >>> df = fp.to_pandas()
        >>> len(df) == len(fp), list(df.columns[:3])
        (True, ['points[0]', 'residuals', 'stable'])
        """
        if not (self._table or self._long):
            raise TypeError(f"a {type(self).__name__} is not a table: use to_xarray()")
        pd = _need("pandas", f"{type(self).__name__}.to_pandas")
        if not self._table:
            return self._long_table(pd)
        cols = self._table_columns()
        axes = [a for a in map(self._schema_axes, self._table) if a]
        index = pd.RangeIndex(len(next(iter(cols.values()), [])),
                              name=axes[0][0] if axes else None)
        return pd.DataFrame(cols, index=index)

    def _long_table(self, pd):
        """A row per entry of the ``_long`` fields (one shape): a MultiIndex over their axes,
        labelled by the coordinates where declared; the last axis varies fastest."""
        arrays = {n: np.asarray(to_numpy(getattr(self, n))) for n in self._long}
        first = self._long[0]
        dims = self._schema_axes(first)
        shape = arrays[first].shape
        levels = [np.asarray(getattr(self, self._coords[d])) if self._coords.get(d)
                  else np.arange(n) for d, n in zip(dims, shape)]
        index = pd.MultiIndex.from_product(levels, names=dims)
        return pd.DataFrame({n: a.reshape(-1) for n, a in arrays.items()}, index=index)

    # -- xarray ---------------------------------------------------------------------
    def _schema_axes(self, name):
        """The dimension names of the array field ``name`` (None for another field)."""
        value = getattr(self, name)
        if not _is_array(value):
            return None
        ndim = len(value.shape)
        axes = _array_axes(getattr(self, "_schema", {}).get(name), ndim)
        if axes is None:
            axes = ["*"] * ndim
        dims, n_batch = [], axes.count("...")
        for i, ax in enumerate(axes):
            if ax == "...":
                base = self._dims.get("...", "batch")
                dims.append(base if n_batch == 1 else f"{base}_{len(dims)}")
            elif ax == "*" or ax.isdigit():
                dims.append(f"{name}_{i}")
            else:
                dims.append(self._dims.get(ax, ax.lower()))
        for i, d in enumerate(dims):  # a square field (k, k): the second axis is d_2
            if d in dims[:i]:
                dims[i] = f"{d}_2"
        return dims

    def to_xarray(self) -> Any:
        """The result's arrays as an :class:`xarray.Dataset` with named dimensions.

        Dimensions are named from the field schema (``time``, ``unit``, ...); the
        fields that label one are its coordinates, plain fields attributes.

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        ImportError
            When xarray is not installed (``pip install 'itermap[tables]'``).

        Examples
        --------
        >>> import itermap
        >>> traj = itermap.iterate(itermap.systems.henon(), np.array([0.1, 0.1]), 4)
        >>> ds = traj.to_xarray()
        >>> ds["states"].dims, ds["time"].values.tolist()
        (('time', 'unit'), [0, 1, 2, 3, 4])
        """
        xr = _need("xarray", f"{type(self).__name__}.to_xarray")
        coord_fields = {f: d for d, f in self._coords.items()}
        data, coords, attrs = {}, {}, {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            dims = self._schema_axes(f.name)
            if dims is not None:
                a = np.asarray(to_numpy(value))
                if f.name in coord_fields and a.ndim == 1:
                    coords[coord_fields[f.name]] = a
                else:
                    data[f.name] = (dims, a)
            elif f.name in coord_fields and isinstance(value, list):
                coords[coord_fields[f.name]] = np.asarray(value)
            elif isinstance(value, bool | int | float | str | np.generic):
                attrs[f.name] = value
        return xr.Dataset(data, coords=coords, attrs=attrs)

    # -- Jupyter --------------------------------------------------------------------
    def _html_rows(self):
        for f in dataclasses.fields(self):
            if f.repr:
                yield f.name, _short(getattr(self, f.name))

    def _repr_html_(self) -> str:
        """A compact HTML table: the status, then each field (arrays by shape and dtype)."""
        rows = [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                for k, v in self._html_rows()]
        status = self.result
        head = html.escape(type(self).__name__)
        if status:
            head += f" &mdash; {html.escape(status.name)}: {html.escape(self.message)}"
        return (f"<table><caption style=\"text-align:left\"><b>{head}</b></caption>"
                f"{''.join(rows)}</table>")
