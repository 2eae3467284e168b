"""Recurrent networks as driven maps: Elman RNN, GRU and LSTM layers, stacked.

A GRU or an LSTM is not of the form ``f(W x + b)``, but it is a map
``h_{t+1} = F(h_t, u_t)`` with exact derivatives. The equations and the gate
order (``r, z, n`` for the GRU, ``i, f, g, o`` for the LSTM) are those of
``torch.nn.GRU`` and ``torch.nn.LSTM``, so weights read from torch run here
unchanged (:func:`itermap.from_torch`). :class:`RecurrentMap` says how its steps
line up with torch's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import check_bool, one_namespace, real_array
from .._core._types import Array
from ._activations import _tanh_d_from, get_activation
from ._map import Map

__all__ = ["ElmanRNNMap", "GRUMap", "LSTMMap", "RecurrentMap"]


def _sigmoid_inplace(a):
    # 0.5 tanh(a / 2) + 0.5: no overflow for large |a|, and in place on NumPy arrays
    if isinstance(a, np.ndarray):
        a *= 0.5
        np.tanh(a, out=a)
        a *= 0.5
        a += 0.5
        return a
    xp = namespace(a)
    return 0.5 * xp.tanh(0.5 * a) + 0.5


# below this s (1 - s) of s = 0.5 tanh(a / 2) + 0.5 has lost half its digits (s is exact
# only to about 1e-16 absolutely): the tangent recomputes s, 1 - s and s' from a there
_SIGMOID_D_EXACT = 1e-8


def _exact_sigmoid(a, xp):
    """``(s, 1 - s, s (1 - s))`` of ``s = sigmoid(a)``, each to full relative precision."""
    e = xp.exp(-xp.abs(a))
    p = 1.0 / (1.0 + e)
    q = e * p
    pos = a >= 0
    return xp.where(pos, p, q), xp.where(pos, q, p), p * q


def _sigmoid_tangent(s, pre, xp, *, open_side=True):
    """``(s, 1 - s, s')`` for the tangent from ``s = sigmoid(a)`` as the step computes it:
    where a gate saturates those lose their digits (``s'`` read 0, a saturated network's
    exponents -inf), so there they come from ``a = pre()`` (formed only then); with
    ``open_side=False`` only where the gate is closed (``s`` small), an open one keeping
    the step's own values."""
    c = 1.0 - s
    d = s * c
    small = d if open_side else s
    if isinstance(d, np.ndarray):
        if small.min() < _SIGMOID_D_EXACT:
            low = small < _SIGMOID_D_EXACT
            s = s.copy()  # the caller's gate values stay those of the step
            s[low], c[low], d[low] = _exact_sigmoid(pre()[low], np)
        return s, c, d
    low = small < _SIGMOID_D_EXACT
    es, ec, ed = _exact_sigmoid(pre(), xp)
    return xp.where(low, es, s), xp.where(low, ec, c), xp.where(low, ed, d)


def _col(g):
    """Gate values (..., H) broadcast against tangents (..., H, k)."""
    return g[..., :, None]


class _Cell:
    """One recurrent layer: ``fwd``, its tangent ``tan`` and its cotangent ``cot``.

    ``n_gates`` blocks of ``hidden`` rows make ``weight_ih`` (n_gates H, I) and
    ``weight_hh`` (n_gates H, H); the biases are optional.
    """

    kind = ""
    n_gates = 1
    state_factor = 1

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, name="layer"):
        with_name = {f"{name} {k}": v for k, v in (("weight_ih", weight_ih), (
            "weight_hh", weight_hh), ("bias_ih", bias_ih), ("bias_hh", bias_hh))}
        one_namespace(**with_name)
        w_hh = real_array(f"{name} weight_hh", weight_hh)
        if w_hh.ndim != 2 or w_hh.shape[0] != self.n_gates * w_hh.shape[1]:
            raise ValueError(f"{name} weight_hh must have shape ({self.n_gates} H, H), got "
                             f"{tuple(w_hh.shape)}")
        H = w_hh.shape[1]
        if H < 1:
            raise ValueError(f"{name} weight_hh has shape {tuple(w_hh.shape)}: the hidden size "
                             f"must be at least 1")
        dtype = w_hh.dtype
        w_ih = real_array(f"{name} weight_ih", weight_ih, dtype=dtype)
        if w_ih.ndim != 2 or w_ih.shape[0] != self.n_gates * H:
            raise ValueError(f"{name} weight_ih must have shape ({self.n_gates * H}, input "
                             f"size), got {tuple(w_ih.shape)}")
        if w_ih.shape[1] < 1:
            raise ValueError(f"{name} weight_ih has shape {tuple(w_ih.shape)}: the input size "
                             f"must be at least 1")
        xp = namespace(w_hh)
        self.hidden = H
        self.input_size = int(w_ih.shape[1])
        self.weight_ih, self.weight_hh = w_ih, w_hh
        self.bias_ih, self.bias_hh = (
            None if b is None else real_array(f"{name} {label}", b, (self.n_gates * H,), dtype)
            for label, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)))
        # transposed copies in C order: states are rows, so steps compute X @ W.T
        self._ihT, self._hhT = (xp.asarray(np.ascontiguousarray(w.T))
                                if isinstance(w, np.ndarray) else w.T for w in (w_ih, w_hh))
        self.dtype = dtype

    @property
    def state_size(self) -> int:
        return self.state_factor * self.hidden

    def _pre(self, h, u):
        """``(W_hh h + b_hh, W_ih u + b_ih)`` for rows ``h`` and ``u``, as fresh arrays."""
        gh, gi = h @ self._hhT, u @ self._ihT
        if self.bias_hh is not None:
            gh += self.bias_hh
        if self.bias_ih is not None:
            gi += self.bias_ih
        return gh, gi

    def arrays(self) -> dict:
        """The layer's weights under torch's names (without the ``_l{k}`` suffix)."""
        out = {"weight_ih": self.weight_ih, "weight_hh": self.weight_hh,
               "bias_ih": self.bias_ih, "bias_hh": self.bias_hh}
        return {k: v for k, v in out.items() if v is not None}


class _ElmanCell(_Cell):
    """``h' = f(W_ih u + b_ih + W_hh h + b_hh)`` with f = tanh or relu."""

    kind = "rnn"

    def __init__(self, *args, nonlinearity="tanh", **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(nonlinearity, str) or nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._f = get_activation(nonlinearity)

    def step(self, h, u):
        a, gi = self._pre(h, u)
        a += gi
        return self._f.apply(a, namespace(a), inplace=True)

    def fwd(self, h, u):
        gh, gi = self._pre(h, u)
        a = gh + gi
        xp = namespace(a)
        return self._f.apply(a, xp), self._f.derivative(a, xp)

    def tan(self, d, vh, vu):
        lin = self.weight_hh @ vh
        if vu is not None:
            lin = lin + self.weight_ih @ vu
        return _col(d) * lin

    def cot(self, d, w, need_input):
        g = w * (d[..., None, :] if w.ndim > d.ndim else d)
        return g @ self.weight_hh, (g @ self.weight_ih if need_input else None)


class _GRUCell(_Cell):
    """torch's GRU: ``r, z = sigmoid(.)``, ``n = tanh(W_in u + b_in + r (W_hn h + b_hn))``,
    ``h' = (1 - z) n + z h``."""

    kind = "gru"
    n_gates = 3

    def step(self, h, u):
        H = self.hidden
        gh, gi = self._pre(h, u)
        rz = gh[..., :2 * H]  # gh has the batch shape; u may be one input for all states
        rz += gi[..., :2 * H]
        rz = _sigmoid_inplace(rz)
        n = gh[..., 2 * H:] * rz[..., :H]
        n += gi[..., 2 * H:]
        xp = namespace(n)
        n = np.tanh(n, out=n) if isinstance(n, np.ndarray) else xp.tanh(n)
        out = h - n
        out *= rz[..., H:]
        out += n
        return out

    def fwd(self, h, u):
        H = self.hidden
        xp = namespace(h)
        gh, gi = self._pre(h, u)
        rz = _sigmoid_inplace(gi[..., :2 * H] + gh[..., :2 * H])
        r, z = rz[..., :H], rz[..., H:]
        hn = gh[..., 2 * H:]
        a_n = gi[..., 2 * H:] + r * hn
        n = xp.tanh(a_n)
        y = n + z * (h - n)
        # a gate near 1 keeps the step's 1 - z and z': their terms are below the rounding of
        # the z v (and r W v) beside them, and an exact 1 - z would let Newton settle on
        # float64's spurious roots far out (|h| >> 1, where z rounds to 1 and h' = h)
        rz, rz_c, rz_d = _sigmoid_tangent(rz, lambda: gi[..., :2 * H] + gh[..., :2 * H], xp,
                                          open_side=False)
        return y, (rz[..., :H], rz[..., H:], rz_c[..., H:], rz_d[..., :H], rz_d[..., H:], n,
                   _tanh_d_from(n, a_n, xp), hn, h)

    def tan(self, cache, vh, vu):
        r, z, zc, r_d, z_d, n, n_d, hn, h = cache
        H = self.hidden
        lin = self.weight_hh @ vh  # (..., 3H, k)
        lin_i = None if vu is None else self.weight_ih @ vu
        ar = lin[..., :H, :] + (0 if lin_i is None else lin_i[..., :H, :])
        az = lin[..., H:2 * H, :] + (0 if lin_i is None else lin_i[..., H:2 * H, :])
        dr = _col(r_d) * ar
        dz = _col(z_d) * az
        an = _col(hn) * dr + _col(r) * lin[..., 2 * H:, :]
        if lin_i is not None:
            an = an + lin_i[..., 2 * H:, :]
        dn = _col(n_d) * an
        return _col(zc) * dn + _col(h - n) * dz + _col(z) * vh

    def cot(self, cache, w, need_input):
        r, z, zc, r_d, z_d, n, n_d, hn, h = cache
        xp = namespace(w)
        if w.ndim > r.ndim:
            r, z, zc, r_d, z_d, n, n_d, hn, h = (a[..., None, :] for a in cache)
        gn = w * zc * n_d  # cotangent on the n gate's pre-activation
        gz = w * (h - n) * z_d
        gr = gn * hn * r_d
        g_hh = xp.concat([gr, gz, gn * r], axis=-1)
        wh = w * z + g_hh @ self.weight_hh
        wu = xp.concat([gr, gz, gn], axis=-1) @ self.weight_ih if need_input else None
        return wh, wu


class _LSTMCell(_Cell):
    """torch's LSTM on the state ``[h; c]``: ``c' = f c + i g``, ``h' = o tanh(c')``."""

    kind = "lstm"
    n_gates = 4
    state_factor = 2

    def _gates(self, hc, u):
        a, gi = self._pre(hc[..., :self.hidden], u)
        a += gi
        return a

    def step(self, hc, u):
        H = self.hidden
        xp = namespace(hc)
        a = self._gates(hc, u)
        ifo = xp.concat([a[..., :2 * H], a[..., 3 * H:]], axis=-1)
        ifo = _sigmoid_inplace(ifo)
        g = xp.tanh(a[..., 2 * H:3 * H])
        c = ifo[..., H:2 * H] * hc[..., H:]
        c += ifo[..., :H] * g
        h = xp.tanh(c)
        h *= ifo[..., 2 * H:]
        return xp.concat([h, c], axis=-1)

    def fwd(self, hc, u):
        H = self.hidden
        xp = namespace(hc)
        a = self._gates(hc, u)
        a_g = a[..., 2 * H:3 * H]
        g = xp.tanh(a_g)
        def a_ifo():
            return xp.concat([a[..., :2 * H], a[..., 3 * H:]], axis=-1)

        ifo = _sigmoid_inplace(a_ifo())  # on a copy: a is kept for the tangent
        i, f, o = ifo[..., :H], ifo[..., H:2 * H], ifo[..., 2 * H:]
        c0 = hc[..., H:]
        c = f * c0 + i * g
        tc = xp.tanh(c)
        y = xp.concat([o * tc, c], axis=-1)
        ifo, _, ifo_d = _sigmoid_tangent(ifo, a_ifo, xp)
        return y, (ifo[..., :H], ifo[..., H:2 * H], g, ifo[..., 2 * H:], c0, tc,
                   ifo_d[..., :H], ifo_d[..., H:2 * H], _tanh_d_from(g, a_g, xp),
                   ifo_d[..., 2 * H:], _tanh_d_from(tc, c, xp))

    def tan(self, cache, v, vu):
        i, f, g, o, c0, tc, i_d, f_d, g_d, o_d, tc_d = cache
        H = self.hidden
        xp = namespace(v)
        vh, vc = v[..., :H, :], v[..., H:, :]
        lin = self.weight_hh @ vh
        if vu is not None:
            lin = lin + self.weight_ih @ vu
        di = _col(i_d) * lin[..., :H, :]
        df = _col(f_d) * lin[..., H:2 * H, :]
        dg = _col(g_d) * lin[..., 2 * H:3 * H, :]
        do = _col(o_d) * lin[..., 3 * H:, :]
        dc = _col(c0) * df + _col(f) * vc + _col(g) * di + _col(i) * dg
        dh = _col(tc) * do + _col(o * tc_d) * dc
        return xp.concat([dh, dc], axis=-2)

    def cot(self, cache, w, need_input):
        i, f, g, o, c0, tc, i_d, f_d, g_d, o_d, tc_d = cache
        H = self.hidden
        xp = namespace(w)
        if w.ndim > i.ndim:
            i, f, g, o, c0, tc, i_d, f_d, g_d, o_d, tc_d = (a[..., None, :] for a in cache)
        wh, wc = w[..., :H], w[..., H:]
        wct = wc + wh * o * tc_d  # all the cotangent that reaches c'
        ga = xp.concat([wct * g * i_d, wct * c0 * f_d, wct * i * g_d, wh * tc * o_d], axis=-1)
        out_h = ga @ self.weight_hh
        wu = ga @ self.weight_ih if need_input else None
        return xp.concat([out_h, wct * f], axis=-1), wu


class RecurrentMap(Map):
    """Stacked recurrent layers (Elman RNN, GRU, LSTM) as one driven map.

    The state stacks every layer's state, bottom layer first: ``h`` for an
    RNN or GRU layer, ``[h; c]`` for an LSTM layer. The input ``u`` of a step
    is the input of the bottom layer (``input_size``); it enters ``F(x, u)``
    and takes no part of the state (``forced_size == 0``).

    Parameters
    ----------
    layers : sequence of layers
        Built by :class:`ElmanRNNMap`, :class:`GRUMap` and :class:`LSTMMap`
        (their ``layers``), or by :func:`itermap.from_torch`. Each layer's input
        size is the hidden size of the layer below it.
    batch_first : bool
        The layout of torch's sequences for :meth:`run`, :meth:`torch_inputs`
        and :meth:`torch_outputs`: ``(B, T, n)`` when True, ``(T, B, n)`` when
        False. The map itself always steps one time at a time.

    Notes
    -----
    Timing: one step advances every layer by one time step, bottom to top,
    as torch does (layer ``l`` reads the new ``h`` of layer ``l - 1``). The
    state after step ``t + 1`` (from input ``x[t]``) holds torch's ``output[t]``
    in :attr:`output_slice`, and the hidden states of layer ``l`` in
    :meth:`hidden_slice` (``cell_slice`` for an LSTM's ``c``).
    :attr:`sizes` lists the blocks: per layer ``(H,)`` or ``(H, H)``.
    :meth:`run` does this alignment: ``output, h_n = m.run(x, h0)`` mirrors
    ``output, h_n = rnn(x, h0)``.

    Examples
    --------
    Two GRU layers; the state after every step holds torch's ``output[t]``:

    >>> import itermap
    >>> rng = np.random.default_rng(0)
    >>> m = itermap.RecurrentMap(itermap.GRUMap(rng.normal(size=(9, 2)),
    ...                                         rng.normal(size=(9, 3))).layers
    ...                          + itermap.GRUMap(rng.normal(size=(9, 3)),
    ...                                           rng.normal(size=(9, 3))).layers)
    >>> x = rng.normal(size=(5, 2))                 # a sequence of 5 inputs
    >>> output, h_n = m.run(x)
    >>> output.shape, h_n.shape
    ((5, 3), (2, 3))
    >>> traj = itermap.iterate(m, m.initial_state(), 5, inputs=x)
    >>> bool(np.array_equal(traj.states[3][m.output_slice], output[2]))
    True
    """

    _holds_arrays = True

    def __init__(self, layers: Sequence[Any], *, batch_first: bool = False):
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers: a recurrent map needs at least one layer")
        for l, layer in enumerate(layers):
            if not isinstance(layer, _Cell):
                raise TypeError(f"layers[{l}] is a {type(layer).__name__}, not a recurrent "
                                f"layer")
            if l and layer.input_size != layers[l - 1].hidden:
                raise ValueError(f"layer {l} takes inputs of size {layer.input_size}, but "
                                 f"layer {l - 1} has hidden size {layers[l - 1].hidden}")
            if layer.dtype != layers[0].dtype:
                raise ValueError(f"layer {l} has dtype {layer.dtype}, layer 0 {layers[0].dtype}")
        self.layers = layers
        self.batch_first = check_bool("batch_first", batch_first)
        starts = np.cumsum([0] + [c.state_size for c in layers])
        self._slices = tuple(slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
        self._dim = int(starts[-1])

    # -- protocol ---------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(c.hidden for c in self.layers for _ in range(c.state_factor))

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def dtype(self):
        return self.layers[0].dtype

    @property
    def backend(self) -> str:
        """Where the weights live: ``"cupy"`` after ``to("cupy")`` (zeros follow it)."""
        return backend_of(self.layers[0].weight_hh)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def kind(self) -> str:
        """``"rnn"``, ``"gru"``, ``"lstm"``, or ``"mixed"``."""
        kinds = {c.kind for c in self.layers}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def step(self, x, u=None):
        """One time step of every layer, bottom to top."""
        x, u = self._check_driven(x, u)
        if len(self.layers) == 1:
            return self.layers[0].step(x, u)
        xp = namespace(x)
        parts, inp = [], u
        for layer, s in zip(self.layers, self._slices):
            y = layer.step(x[..., s], inp)
            parts.append(y)
            inp = y[..., :layer.hidden]
        return xp.concat(parts, axis=-1)

    def _forward(self, x, u):
        parts, caches, inp = [], [], u
        for layer, s in zip(self.layers, self._slices):
            y, cache = layer.fwd(x[..., s], inp)
            parts.append(y)
            caches.append(cache)
            inp = y[..., :layer.hidden]
        return parts, caches

    def _tangent(self, caches, v, xp):
        out, dinp = [], None
        for layer, s, cache in zip(self.layers, self._slices, caches):
            dy = layer.tan(cache, v[..., s, :], dinp)
            out.append(dy)
            dinp = dy[..., :layer.hidden, :]
        return xp.concat(out, axis=-2) if len(out) > 1 else out[0]

    def tangent(self, x, v, u=None):
        """``J(x) @ v`` by the chain rule through the layers."""
        return self.step_with_tangent(x, v, u)[1]

    def step_with_tangent(self, x, v, u=None):
        x, u = self._check_driven(x, u)
        v = self._check_tangent(x, v)
        xp = namespace(x)
        parts, caches = self._forward(x, u)
        y = xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]
        return y, self._tangent(caches, v, xp)

    def vjp(self, x, w, u=None):
        """``w^T J(x)``, backward through the layers (reverse mode)."""
        x, u = self._check_driven(x, u)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        _, caches = self._forward(x, u)
        out = [None] * len(self.layers)
        carry = None  # cotangent that the layer above sends to this layer's new h
        for l in range(len(self.layers) - 1, -1, -1):
            layer, s = self.layers[l], self._slices[l]
            wl = w[..., s]
            if carry is not None:
                H = layer.hidden
                wl = xp.concat([wl[..., :H] + carry, wl[..., H:]], axis=-1)
            out[l], carry = layer.cot(caches[l], wl, need_input=l > 0)
        return xp.concat(out, axis=-1) if len(out) > 1 else out[0]

    def to(self, backend: str):
        layers = []
        for c in self.layers:
            arrays = {k: to_backend(v, backend) for k, v in c.arrays().items()}
            kw = {"nonlinearity": c.nonlinearity} if c.kind == "rnn" else {}
            layers.append(type(c)(**arrays, **kw))
        return RecurrentMap(layers, batch_first=self.batch_first)

    # -- alignment with torch ----------------------------------------------
    def hidden_slice(self, layer: int = -1) -> slice:
        """The slice of the state holding layer ``layer``'s hidden state ``h``."""
        s = self._slices[self._layer(layer)]
        return slice(s.start, s.start + self.layers[self._layer(layer)].hidden)

    def cell_slice(self, layer: int = -1) -> slice:
        """The slice of an LSTM layer's cell state ``c``."""
        l = self._layer(layer)
        if self.layers[l].kind != "lstm":
            raise ValueError(f"layer {l} is a {self.layers[l].kind} layer: it has no cell state")
        s = self._slices[l]
        return slice(s.start + self.layers[l].hidden, s.stop)

    @property
    def output_slice(self) -> slice:
        """The slice of the state that is torch's ``output[t]`` (the top layer's ``h``)."""
        return self.hidden_slice(-1)

    def readout(self, x):
        """torch's output, the top layer's ``h`` (an LSTM's last block is its ``c``)."""
        return x[..., self.output_slice]

    def _layer(self, layer):
        n = len(self.layers)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
                or not -n <= layer < n:
            raise ValueError(f"layer {layer!r} does not exist: the map has {n} layers")
        return int(layer) % n

    def initial_state(self, h0=None, c0=None, *, batch: int | None = None):
        """The start state from torch's ``h0`` (and ``c0``), shape ``(L, [B,] H)``.

        Zeros where not given (torch's default); ``batch`` sets the batch
        size when neither is given.
        """
        L = len(self.layers)
        H = self.layers[0].hidden
        given = [a for a in (h0, c0) if a is not None]
        if given:
            a = np.asarray(to_numpy(given[0]))
            if a.ndim not in (2, 3) or a.shape[0] != L:
                raise ValueError(f"h0/c0 must have shape ({L}, H) or ({L}, B, H), got "
                                 f"{a.shape}")
            lead = a.shape[1:-1]
        else:
            lead = () if batch is None else (int(batch),)
        parts = []
        for l, layer in enumerate(self.layers):
            for which, arr in (("h0", h0), ("c0", c0))[:layer.state_factor]:
                if arr is None:
                    parts.append(np.zeros((*lead, layer.hidden), dtype=self.dtype))
                    continue
                arr = np.asarray(to_numpy(arr))
                if arr.shape != (L, *lead, H) or any(c.hidden != H for c in self.layers):
                    raise ValueError(f"{which} must have shape {(L, *lead, layer.hidden)}, got "
                                     f"{arr.shape}")
                parts.append(arr[l].astype(self.dtype))
        if c0 is not None and not any(c.kind == "lstm" for c in self.layers):
            raise ValueError("c0: this map has no LSTM layer")
        state = np.concatenate(parts, axis=-1)
        return to_backend(state, "cupy") if self.backend == "cupy" else state

    def torch_inputs(self, x):
        """torch's input sequence ``x`` as the input sequence of :func:`itermap.iterate`.

        ``(B, T, n)`` (batch_first) or ``(T, B, n)`` becomes ``(T, B, n)``; an
        unbatched ``(T, n)`` stays as it is.
        """
        x = np.asarray(x) if not hasattr(x, "shape") else x
        if x.ndim == 3 and self.batch_first:
            return np.swapaxes(x, 0, 1)
        return x

    def torch_outputs(self, trajectory):
        """torch's ``output`` from a :class:`~itermap.Trajectory` of ``iterate``.

        The trajectory must keep every step (``keep="all"``, ``every=1``); its
        state at step ``t + 1`` gives ``output[t]``. The result has torch's
        layout (batch first when ``batch_first``).
        """
        times = np.asarray(trajectory.times)
        if times.size < 2 or times[0] != 0 or np.any(np.diff(times) != 1):
            raise ValueError("trajectory must keep every step from step 0 (iterate with "
                             "keep='all', every=1)")
        out = trajectory.states[1:, ..., self.output_slice]
        if out.ndim == 3 and self.batch_first:
            out = np.swapaxes(out, 0, 1)
        return out

    def torch_final(self, state):
        """torch's ``h_n`` (and ``(h_n, c_n)`` for an LSTM) from a final state; lists of
        the layers' states where their hidden sizes differ (no torch module has that)."""
        def layers(part):
            out = [state[..., part(l)] for l in range(len(self.layers))]
            return np.stack(out) if len({c.hidden for c in self.layers}) == 1 else out
        if self.kind != "lstm":
            return layers(self.hidden_slice)
        return layers(self.hidden_slice), layers(self.cell_slice)

    def run(self, x, h0=None, c0=None):
        """Run a sequence as torch's module would: ``(output, h_n)`` or
        ``(output, (h_n, c_n))`` for an LSTM, in torch's layout.

        Parameters
        ----------
        x : array of shape (T, n), (T, B, n), or (B, T, n) when batch_first
            The input sequence.
        h0, c0 : arrays of shape (L, [B,] H), optional
            Start states; zeros by default. An LSTM also takes torch's pair,
            ``run(x, (h0, c0))``.

        Returns
        -------
        (output, h_n) or (output, (h_n, c_n))
            ``output`` of shape ``(T, [B,] H)`` (``(B, T, H)`` when batch_first),
            ``h_n`` and ``c_n`` of shape ``(L, [B,] H)`` (lists where the sizes differ).
        """
        from .._running._iterate import iterate

        if isinstance(h0, tuple) and c0 is None:    # torch's call form lstm(x, (h0, c0))
            if len(h0) != 2 or not any(c.kind == "lstm" for c in self.layers):
                raise TypeError("h0: a tuple is an LSTM's (h0, c0) pair; pass h0 as one "
                                "array of shape (L, [B,] H)")
            h0, c0 = h0

        if hasattr(x, "shape") and backend_of(x) not in ("numpy", self.backend):
            raise TypeError(f"x: a {backend_of(x)} array; run takes NumPy arrays (a CPU "
                            f"torch tensor: x.numpy())")
        seq = self.torch_inputs(x)
        batch = seq.shape[1] if seq.ndim == 3 else None
        x0 = self.initial_state(h0, c0, batch=batch)
        traj = iterate(self, x0, seq.shape[0], inputs=seq)
        return self.torch_outputs(traj), self.torch_final(traj.final)

    def __repr__(self) -> str:
        desc = ", ".join(f"{c.kind}({c.input_size}->{c.hidden})" for c in self.layers)
        return f"{type(self).__name__}(dim={self.dim}, layers=[{desc}])"


class ElmanRNNMap(RecurrentMap):
    """One Elman RNN layer, ``h' = f(W_ih u + b_ih + W_hh h + b_hh)`` (torch's ``nn.RNN``).

    Parameters
    ----------
    weight_ih : array (H, I)
    weight_hh : array (H, H)
    bias_ih, bias_hh : arrays (H,), optional
    nonlinearity : {"tanh", "relu"}
    batch_first : bool

    References
    ----------
    .. [1] J. L. Elman, "Finding structure in time", Cognitive Science 14(2),
       179-211 (1990).

    Examples
    --------
    >>> from itermap import ElmanRNNMap, check_map
    >>> rng = np.random.default_rng(0)
    >>> m = ElmanRNNMap(rng.normal(size=(3, 2)), 0.5 * rng.normal(size=(3, 3)))
    >>> m.dim, m.input_size, check_map(m, rng=0).passed
    (3, 2, True)
    """

    def __init__(self, weight_ih: Array, weight_hh: Array, bias_ih: Array | None = None,
                 bias_hh: Array | None = None, *, nonlinearity: str = "tanh",
                 batch_first: bool = False):
        super().__init__([_ElmanCell(weight_ih, weight_hh, bias_ih, bias_hh,
                                     nonlinearity=nonlinearity)], batch_first=batch_first)


class GRUMap(RecurrentMap):
    """One GRU layer as a driven map on ``h`` (torch's ``nn.GRU`` equations).

    ``r = sigmoid(W_ir u + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in u + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.
    The three gates' hidden products are one matmul.

    Parameters
    ----------
    weight_ih : array (3H, I)
        Rows ordered ``r, z, n``, as torch's ``weight_ih_l0``.
    weight_hh : array (3H, H)
    bias_ih, bias_hh : arrays (3H,), optional
    batch_first : bool

    References
    ----------
    .. [1] K. Cho, B. van Merrienboer, C. Gulcehre, D. Bahdanau, F. Bougares,
       H. Schwenk, Y. Bengio, "Learning phrase representations using RNN
       encoder-decoder for statistical machine translation", EMNLP (2014),
       arXiv:1406.1078.

    Examples
    --------
    >>> from itermap import GRUMap, check_map
    >>> rng = np.random.default_rng(0)
    >>> m = GRUMap(rng.normal(size=(6, 1)), rng.normal(size=(6, 2)), rng.normal(size=6))
    >>> m.dim, m.input_size, check_map(m, rng=0).passed
    (2, 1, True)
    """

    def __init__(self, weight_ih: Array, weight_hh: Array, bias_ih: Array | None = None,
                 bias_hh: Array | None = None, *, batch_first: bool = False):
        super().__init__([_GRUCell(weight_ih, weight_hh, bias_ih, bias_hh)],
                         batch_first=batch_first)


class LSTMMap(RecurrentMap):
    """One LSTM layer as a driven map on the state ``[h; c]`` (torch's ``nn.LSTM``).

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)`` (rows ordered ``i, f, g, o``),
    ``c' = f c + i g``, ``h' = o tanh(c')``.

    Parameters
    ----------
    weight_ih : array (4H, I)
    weight_hh : array (4H, H)
    bias_ih, bias_hh : arrays (4H,), optional
    batch_first : bool

    References
    ----------
    .. [1] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
       Computation 9(8), 1735-1780 (1997).

    Examples
    --------
    >>> from itermap import LSTMMap, check_map
    >>> rng = np.random.default_rng(0)
    >>> m = LSTMMap(rng.normal(size=(8, 1)), rng.normal(size=(8, 2)))
    >>> m.dim, m.sizes, check_map(m, rng=0).passed
    (4, (2, 2), True)
    """

    def __init__(self, weight_ih: Array, weight_hh: Array, bias_ih: Array | None = None,
                 bias_hh: Array | None = None, *, batch_first: bool = False):
        super().__init__([_LSTMCell(weight_ih, weight_hh, bias_ih, bias_hh)],
                         batch_first=batch_first)
