"""The small-map stepper's loops as source text: numba's kernels and the float loops of 2-D maps.

:mod:`itermap._running._stepper` runs them; this module writes and compiles them.
:class:`ScalarSource` is how a map hands its step and Jacobian over as
statements on floats (the classic maps do).
"""

from __future__ import annotations

import dis
import functools
import logging
import math
import types
from dataclasses import dataclass

import numpy as np

_COMPILED: dict = {}   # (key, batch) -> (kernel, probe), or None where numba refused them
_CLASSES: dict = {}    # an object's key -> its jitclass, or None where numba refused it

_BODY = '''
            for i in range(dim):
                for j in range(k):
                    s = 0.0
                    for m in range(dim):
                        s += J[i, m] * Q[m, j]
                    Y[i, j] = s
            if t % every != 0 and t != n:
                for i in range(dim):
                    for j in range(k):
                        Q[i, j] = Y[i, j]
            else:
                lost = -np.inf
                for j in range(k):
                    n0 = 0.0
                    if every > 1:
                        for i in range(dim):
                            n0 += Y[i, j] * Y[i, j]
                    for rep in range(2):
                        for m in range(j):
                            r = 0.0
                            for i in range(dim):
                                r += Q[i, m] * Y[i, j]
                            for i in range(dim):
                                Y[i, j] -= r * Q[i, m]
                            if store_r:
                                r_out[t - 1, b, m, j] += r
                    rjj = 0.0
                    for i in range(dim):
                        rjj += Y[i, j] * Y[i, j]
                    rjj = np.sqrt(rjj)
                    if not (rjj > 0.0 and rjj < np.inf):
                        return 1 + b
                    for i in range(dim):
                        Q[i, j] = Y[i, j] / rjj
                    if store_r:
                        r_out[t - 1, b, j, j] = rjj
                    logs[j] = np.log(rjj)
                    if every > 1:
                        lost = max(lost, 0.5 * np.log(n0) - logs[j])
                for j in range(k):
                    acc[b, j] += logs[j]
                if h_every > 0 and (t % h_every == 0 or t == n):
                    for j in range(k):
                        h_out[(t - 1) // h_every, b, j] = acc[b, j]
                if every > 1:
                    stats[b, 0] = max(stats[b, 0], lost)
                    stats[b, 1] += np.exp(min(lost, 700.0))
                if q_every > 0 and t % q_every == 0:
                    for i in range(dim):
                        for j in range(k):
                            q_out[t // q_every - 1, b, i, j] = Q[i, j]
'''

_HEAD = '''
def kernel(p, X, Qs, n, every, per, acc, stats, r_out, q_out, q_every, h_out, h_every):
    """Advance each row of X (and its frame in Qs) n steps; 0, or 1 + a failed row. With
    every = 1 and h_every > 0, acc is recorded in h_out every h_every steps and at the last."""
    B, dim = X.shape
    k = Qs.shape[2]
    store_r = r_out.shape[0] == n and n > 0
    Y = np.empty((dim, k))
    logs = np.empty(k)
'''

# one trajectory after the other: the point functions on one state (dim,)
_KERNEL_ROWS = _HEAD + '''
    for b in range(B):
        x = X[b].copy()
        Q = Qs[b]
        for t in range(1, n + 1):
            J = jac(x, p)
            x = step(x, p)
            for i in range(dim):
                if per[i] < np.inf:
                    x[i] = x[i] - per[i] * np.floor(x[i] / per[i])
''' + _BODY + '''
        for i in range(dim):
            if not (abs(x[i]) < np.inf):
                return 1 + b
        X[b] = x
    return 0
'''

# the batch together: the point functions called on all of it, (B, dim), once a step
_KERNEL_BATCH = _HEAD + '''
    x = X.copy()
    for t in range(1, n + 1):
        JB = jac(x, p)
        x = step(x, p)
        for b in range(B):
            for i in range(dim):
                if per[i] < np.inf:
                    x[b, i] = x[b, i] - per[i] * np.floor(x[b, i] / per[i])
        for b in range(B):
            J = JB[b]
            Q = Qs[b]
''' + _BODY + '''
    for b in range(B):
        for i in range(dim):
            if not (abs(x[b, i]) < np.inf):
                return 1 + b
    X[:] = x
    return 0
'''



_PROBE = """
def probe(p, x):
    return step(x, p), jac(x, p)
"""


def _point_key(step, jac, params):
    """The compile cache's key for the point functions and the values of an object's attributes.

    ``("fn", step, jac, params is None)`` for functions; ``("obj", class, method
    names, spec, members)`` for methods of one plain user object, whose numeric
    attributes become the fields of a numba jitclass; ``(None, None)`` otherwise.
    """
    if _compilable(step) and _compilable(jac):
        return ("fn", step, jac, params is None), None
    obj = getattr(step, "__self__", None)
    funcs_of = [getattr(f, "__func__", None) for f in (step, jac)]
    if params is not None or obj is None or getattr(jac, "__self__", None) is not obj or \
            not all(isinstance(f, types.FunctionType) for f in funcs_of):
        return None, None
    import numba
    from numba.core import types as nt

    funcs, attrs = {}, {}
    for cls in reversed(type(obj).__mro__):
        if cls is object or cls.__module__.split(".")[0] == "itermap":
            continue
        for name, v in vars(cls).items():
            if not name.startswith("__"):
                method = isinstance(v, types.FunctionType | staticmethod | property)
                (funcs if method else attrs)[name] = v
                (attrs if method else funcs).pop(name, None)
    attrs.update(getattr(obj, "__dict__", {}))
    names = tuple(next((n for n, f in funcs.items() if f is g), None) for g in funcs_of)
    # a method that sets an attribute has a side effect on the object: the plain loop keeps it
    if None in names or any(_sets_attribute(g) for g in funcs_of):
        return None, None
    spec, values = [], []
    for name, v in attrs.items():
        if name in funcs or not name.isidentifier():
            continue
        if isinstance(v, types.MemberDescriptorType):  # a __slots__ member
            v = getattr(obj, name, None)
        try:
            t = numba.typeof(v)
        except Exception:  # noqa: BLE001 -- not typed: left out (a method reading it is refused)
            continue
        items = t.types if isinstance(t, nt.BaseTuple) else (t.dtype,) if isinstance(
            t, nt.Array) else (t,)
        if items and all(isinstance(e, nt.Number | nt.Boolean) for e in items):
            spec.append((name, t))
            values.append(v)
    return ("obj", type(obj), names, tuple(spec), tuple(funcs.items())), values


@functools.lru_cache(maxsize=256)
def _sets_attribute(func) -> bool:
    """Whether ``func``'s code stores an attribute (read once a function: ``dis`` is slow)."""
    return any(i.opname == "STORE_ATTR" for i in dis.get_instructions(func))


def _jit_object(key, values):
    """A jitclass instance holding ``values`` for an ``"obj"`` key (the class made once)."""
    if key not in _CLASSES:
        _CLASSES[key] = None
        from numba.experimental import jitclass

        _, cls, _, spec, members = key
        args = "".join(f", _{i}" for i in range(len(spec)))
        ns: dict = {}
        exec(f"def __init__(self{args}):\n    pass" + "".join(  # noqa: S102
            f"\n    self.{n} = _{i}" for i, (n, _) in enumerate(spec)), ns)
        _CLASSES[key] = jitclass(list(spec))(type(cls.__name__, (), {
            **dict(members), "__init__": ns["__init__"]}))
    return _CLASSES[key](*values)


def _kernel_functions(numba, key):
    """``step(x, p)`` and ``jac(x, p)`` as numba dispatchers for a key of :func:`_point_key`."""
    if key[0] == "obj":  # p is the jitclass instance: its methods
        ns: dict = {}
        exec("def step(x, p):\n    return p.{}(x)\n"  # noqa: S102
             "def jac(x, p):\n    return p.{}(x)\n".format(*key[2]), ns)
        return numba.njit(ns["step"]), numba.njit(ns["jac"])
    _, step, jac, no_params = key

    def jitted(f):
        return f if isinstance(f, numba.core.registry.CPUDispatcher) else numba.njit(f)

    s1, j1 = jitted(step), jitted(jac)
    if not no_params:
        return s1, j1

    @numba.njit
    def s2(x, p):  # f(x): called as f(x, p) by the kernel
        return s1(x)

    @numba.njit
    def j2(x, p):
        return j1(x)
    return s2, j2


@functools.cache   # registered once a process
def _stack_lists(numba):
    """Register ``np.stack`` on a list with numba, which takes a tuple only: a user's
    ``np.stack([a, b], -1)`` (scalars, or arrays of one shape, a literal axis) then compiles.
    Only signatures numba refuses gain an implementation; its own are unchanged."""
    from numba.core import types as nt
    from numba.extending import overload

    @overload(np.stack)
    def _stack(arrays, axis=0):
        if not isinstance(arrays, nt.List):
            return None
        ax = axis.value if isinstance(axis, nt.Omitted) else getattr(
            axis, "literal_value", 0 if axis == 0 else None)
        if not isinstance(ax, int):
            return None
        if isinstance(arrays.dtype, nt.Number) and ax in (0, -1):
            return lambda arrays, axis=0: np.array(arrays)
        if not isinstance(arrays.dtype, nt.Array):
            return None
        nd = arrays.dtype.ndim
        a = ax + nd + 1 if ax < 0 else ax
        if not 0 <= a <= nd:
            return None
        perm = (*range(1, a + 1), 0, *range(a + 1, nd + 1))

        def impl(arrays, axis=0):
            first = arrays[0]
            out = np.empty((len(arrays),) + first.shape, first.dtype)
            for i in range(len(arrays)):
                if arrays[i].shape != first.shape:
                    raise ValueError("np.stack: all input arrays must have the same shape")
                out[i] = arrays[i]
            return np.ascontiguousarray(np.transpose(out, perm))
        return impl


def _compile(key, p, x, Q, batch):
    """``(kernel, probe)`` compiled for the point functions of ``key`` (one row at a time, or
    ``batch``), or None where numba refuses them; tried once a key."""
    if (key, batch) in _COMPILED:
        return _COMPILED[key, batch]
    entry = None
    try:
        import numba

        _stack_lists(numba)
        step, jac = _kernel_functions(numba, key)
        ns = {"np": np, "step": step, "jac": jac}
        exec(compile((_KERNEL_BATCH if batch else _KERNEL_ROWS) + _PROBE,  # noqa: S102
                     "<itermap small-map kernel>", "exec"), ns)
        kernel = numba.njit(ns["kernel"])
        # numba compiles at the first call: one of no steps, on arrays of the loop's types
        dim, k = x.shape[1], Q.shape[2]
        B = 2 if batch else 1
        kernel(p, np.repeat(x[:1], B, 0), np.repeat(Q[:1], B, 0), 0, 1, np.full(dim, np.inf),
               np.zeros((B, k)), np.zeros((B, 2)), np.zeros((1, B, k, k)),
               np.zeros((1, B, dim, k)), 0, np.zeros((1, B, k)), 0)
        entry = kernel, numba.njit(ns["probe"])
    except Exception:  # noqa: BLE001 -- anything numba refuses runs the plain loop
        logging.getLogger(__name__).info("numba refused %r: the plain loop runs", key[1])
    _COMPILED[key, batch] = entry
    return entry


def _close(a, b) -> bool:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return bool(np.all(np.abs(a - b) <= 1e-12 * scale))


def _agrees(probe, p, step, jac, params, x, batch) -> bool:
    """Whether the compiled point functions give the plain calls' numbers (within 1e-12 of
    the largest entry) at the first start, or at each of the first three rows of a batch."""
    rows = x[:3] if batch else x[:1]
    try:
        y, J = probe(p, rows.copy() if batch else rows[0].copy())
        with np.errstate(all="ignore"):
            plain = [(np.asarray(step(r.copy()) if params is None else step(r.copy(), params)),
                      np.asarray(jac(r.copy()) if params is None else jac(r.copy(), params)))
                     for r in rows]
    except Exception:  # noqa: BLE001 -- the plain loop (or the general path) names it
        return False
    y0 = np.stack([a for a, _ in plain]) if batch else plain[0][0]
    J0 = np.stack([b for _, b in plain]) if batch else plain[0][1]
    want = rows.shape if batch else rows.shape[1:]
    return (_is_f64(y, want) and _is_f64(J, want + (x.shape[1],)) and y0.shape == want
            and J0.shape == J.shape and _close(y, y0) and _close(J, J0))


def one_state_only(step, params, x) -> bool:
    """Whether ``step`` takes one state only: on the first rows of the batch ``x`` it raises,
    or differs from its calls on each row (only the compiled kernel, row by row, runs it)."""
    def call(v):
        return np.asarray(step(v.copy()) if params is None else step(v.copy(), params))

    with np.errstate(all="ignore"):
        try:
            each = np.stack([call(r) for r in x[:3]])
        except Exception:  # noqa: BLE001 -- a batch only
            return False
        try:
            y = call(x[:3])
        except Exception:  # noqa: BLE001
            return True
        return not (y.shape == each.shape and np.allclose(y, each, rtol=1e-12, atol=0.0,
                                                          equal_nan=True))


def compiled_kernel(step, jac, params, x, Q, key, values):
    """The compiled kernel and its ``p`` for a stepper, or ``(None, None)``: a batch tries the
    point functions on all of it, then one row at a time; each is checked by :func:`_agrees`."""
    log = logging.getLogger(__name__)
    p = params if params is not None else 0.0
    if key[0] == "obj":
        try:
            p = _jit_object(key, values)
        except Exception:  # noqa: BLE001 -- not a jitclass: the plain loop, from now on
            _CLASSES[key] = None
            log.info("numba refused the attributes of %r: the plain loop runs", key[1])
            return None, None
    for batch in ((True, False) if x.shape[0] > 1 else (False,)):
        entry = _compile(key, p, x, Q, batch)
        if entry is not None:
            if _agrees(entry[1], p, step, jac, params, x, batch):
                return entry[0], p
            log.info("compiled %r differs from its plain call at the start: not used", key[1])
    return None, None


# -- the uncompiled loops of a 2-D map ---------------------------------------------------
@dataclass(frozen=True)
class ScalarSource:
    """A 2-D map's step and Jacobian as statements on floats, for the uncompiled loop.

    The stepper writes ``body`` into its loop (no function call a step): it
    reads ``x0, x1`` and the parameters in ``names``, and sets ``y0, y1``
    (the next state) and whatever the ``jacobian`` entries name. Names starting
    with ``_`` are the loop's own. ``sin, cos, tan, exp, log, sqrt, tanh,
    fabs, floor`` are :mod:`math`'s.

    Parameters
    ----------
    body : str
        Statements, one a line.
    jacobian : tuple of 4 str
        ``J00, J01, J10, J11`` at ``(x0, x1)``: expressions on the names
        ``body`` sets, the parameters and literals (``"0.0"`` and ``"1.0"``
        are folded into the products).
    names : tuple of (str, float)
        The parameters.
    det : str, optional
        ``det J`` where it is the same at every state (an expression of the
        parameters): then it is not formed a step.
    """

    body: str
    jacobian: tuple
    names: tuple = ()
    det: str | None = None


_MATH = ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "fabs", "floor")


def _times(a, b):
    """The text of ``a * b`` with the literals 0 and 1 folded ("" for zero)."""
    if "0.0" in (a, b):
        return ""
    return b if a == "1.0" else a if b == "1.0" else f"({a}) * ({b})"


def _dot(a, u, b, v):
    terms = [t for t in (_times(a, u), _times(b, v)) if t]
    return " + ".join(terms) or "0.0"


def _det_text(j00, j01, j10, j11):
    t1, t2 = _times(j00, j11), _times(j01, j10)
    return (f"{t1} - ({t2})" if t1 and t2 else t1 or (f"-({t2})" if t2 else "0.0"))


_FACTORY = '''
def factory(_P0, _P1, {args}):
    {math} = {mathmod}

    def kernel(x0, x1):
{body8}
        return y0, y1, {j00}, {j01}, {j10}, {j11}

    def loop(_n, x0, x1, _u0, _u1, _a0, _ad, _sg, _track, _every, _out):
        # every step a QR in closed form: the first column normalised, det J for the rest;
        # (steps, _a0, _ad) appended to _out after every _every steps and the last
        _done = 0
        while _done < _n:
            _m = min(_every, _n - _done)
            _done += _m
            for _ in range(_m):
{body16}
                _v0, _v1 = {prod0}, {prod1}
                if _track:
                    _d = {det}
                    _ad += log(fabs(_d))
                    if _d < 0.0:
                        _sg = -_sg
                x0, x1 = {wrap}
                _r = sqrt(_v0 * _v0 + _v1 * _v1)
                _u0, _u1 = _v0 / _r, _v1 / _r
                _a0 += log(_r)
            _out.append((_done, _a0, _ad))
        return x0, x1, _u0, _u1, _a0, _ad, _sg

    return kernel, loop
'''


@functools.lru_cache(maxsize=64)
def _float_factory(body, jacobian, argnames, periodic):
    """Compile the kernel and the loop of a :class:`ScalarSource` (by its text)."""
    j00, j01, j10, j11 = jacobian
    wrap = ", ".join(f"y{i} - _P{i} * floor(y{i} / _P{i})" if p else f"y{i}"
                     for i, p in enumerate(periodic))
    code = _FACTORY.format(
        args=", ".join(argnames) or "_unused=None", math=", ".join(_MATH),
        mathmod=", ".join(f"math.{f}" for f in _MATH),
        body8="\n".join(" " * 8 + line.strip() for line in body.strip().splitlines()),
        body16="\n".join(" " * 16 + line.strip() for line in body.strip().splitlines()),
        wrap=wrap, j00=j00, j01=j01, j10=j10, j11=j11,
        prod0=_dot(j00, "_u0", j01, "_u1"), prod1=_dot(j10, "_u0", j11, "_u1"),
        det=_det_text(j00, j01, j10, j11))
    ns = {"math": math}
    exec(compile(code, "<itermap small-map loop>", "exec"), ns)
    return ns["factory"]


@functools.lru_cache(maxsize=64)
def _float_loops(src, periods):
    """``(kernel, loop, det)`` of a :class:`ScalarSource` for a map with these periods (a tuple)."""
    names = tuple(n for n, _ in src.names)
    periodic = tuple(bool(math.isfinite(P)) for P in periods)
    factory = _float_factory(src.body, tuple(src.jacobian), names, periodic)
    P = [float(P) if math.isfinite(P) else 1.0 for P in periods]
    kernel, loop = factory(*P, *(float(v) for _, v in src.names))
    det = None
    if src.det is not None:
        det = float(eval(src.det, {"__builtins__": {}}, dict(src.names)))  # noqa: S307
    return kernel, loop, det


def _is_f64(a, shape) -> bool:
    return isinstance(a, np.ndarray) and a.shape == shape and a.dtype == np.float64


def _compilable(f) -> bool:
    if isinstance(f, types.FunctionType):
        return True
    return type(f).__name__ == "CPUDispatcher"
