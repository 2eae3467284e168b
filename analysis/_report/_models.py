"""The pieces every spec model shares: value types, the network kinds, the analysis base."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

__all__ = ["SpecError", "SpecModel", "Count", "NonNegative", "Finite", "Name", "Gains",
           "GainRange", "Network", "NETWORK_MODELS", "AnalysisModel", "Cost", "Sizes"]


class SpecError(ValueError):
    """A report spec with a missing, unknown or malformed key (the message names it)."""


class SpecModel(BaseModel):
    """Strict tables: no unknown keys, no strings for numbers, no floats for counts."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False,
                              use_attribute_docstrings=True)


def _integral(value):
    # TOML users write 1e6 for a million steps; an integral float is that count (a
    # fractional one is still refused as "expected an integer")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, Field(ge=1), BeforeValidator(_integral)]
NonNegative = Annotated[int, Field(ge=0), BeforeValidator(_integral)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: a gain or spectral radius of a scan: >= 0, as a network's own gain
Gain = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Density = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
#: Network names become file names and keys: identifiers only.
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: the names in itermap.ACTIVATIONS (a test keeps them equal)
Activation = Literal["elu", "gelu", "identity", "leaky_relu", "linear", "relu", "sigmoid",
                     "silu", "sin", "softplus", "tanh"]


class GainRange(SpecModel):
    """``{start, stop, num}``: ``num`` evenly spaced gains (materialised only when run)."""

    start: Gain
    stop: Gain
    num: Count


#: union tags pydantic puts in an error's location; never keys of a spec
TAGS = {"gain-list", "gain-range", "one-activation", "activation-per-block", "input-value",
        "input-vector", "input-draw"}


class InputDraw(SpecModel):
    """A held input drawn as ``scale * N(0, 1)`` per input unit from the stream of ``seed``."""

    scale: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    """Standard deviation of each input unit."""
    seed: NonNegative | None = None
    """The draw's seed (default: the spec's seed). Networks with the same seed and input
    size get the same input."""


#: ``input`` of a driven network: one value for every input unit (0: zero input), the
#: vector itself, or a draw ``{scale, seed}``
HeldInput = Annotated[
    Annotated[Finite, Tag("input-value")]
    | Annotated[list[Finite], Field(min_length=1), Tag("input-vector")]
    | Annotated[InputDraw, Tag("input-draw")],
    Discriminator(lambda v: "input-draw" if isinstance(v, (dict, InputDraw))
                  else "input-vector" if isinstance(v, list) else "input-value"),
]

_INPUT_DOC = ("The input held at every step of a driven network: a number for every input "
              "unit (0: zero), a list (the vector), or {scale, seed} (drawn). Default: "
              "drawn with scale 1 from the spec's seed, the same for every network of the "
              "same input size, so networks compared across a parameter see one input.")


class _NetworkModel(SpecModel):
    """What every network kind shares: the held input of a driven network."""

    input: HeldInput | None = Field(default=None, description=_INPUT_DOC)

    def static_input_size(self) -> int | None:
        """Input units known from the spec alone (0: undriven; None: known once loaded)."""
        return None

    def check(self, where):
        """Cross-checks beyond the types (here the held input's size); raise SpecError."""
        n = self.static_input_size()
        if n is not None:
            check_held_input(where, self.input, n)


def check_held_input(where, held, n):
    """Refuse a held input for a network of ``n`` input units that cannot take it."""
    if held is not None and n == 0:
        raise SpecError(f"{where}.input: the network is not driven (it has no input "
                        f"block), so it holds no input; to drive it: {_HOW_DRIVEN}")
    if isinstance(held, list) and len(held) != n:
        raise SpecError(f"{where}.input: expected {n} values (the input block's size), "
                        f"got {len(held)}")


#: how a spec makes a network driven (for the messages that refuse an undriven one)
_HOW_DRIVEN = "inputs = 1 for a random_rnn, an input_block for a pattern, or an mlp"


Gains = Annotated[
    Annotated[list[Gain], Field(min_length=1), Tag("gain-list")]
    | Annotated[GainRange, Tag("gain-range")],
    Discriminator(lambda v: "gain-range" if isinstance(v, (dict, GainRange)) else "gain-list"),
]


def gain_values(gains):
    """The gains of a spec as a float array (the table form through ``linspace``)."""
    if isinstance(gains, GainRange):
        return np.linspace(gains.start, gains.stop, gains.num)
    return np.asarray(gains, dtype=float)


def gain_count(gains) -> int:
    return gains.num if isinstance(gains, GainRange) else len(gains)


# -- networks -------------------------------------------------------------------------
class MLP(_NetworkModel):
    """An MLP: random weights of the given ``widths``, or the layers saved in ``path``."""

    kind: Literal["mlp"]
    widths: Annotated[list[Count], Field(min_length=2)] | None = None
    """Layer widths, input first: random weights N(0, scale^2 / fan-in)."""
    path: str | None = None
    """An .npz of W0, W1, ... (torch (out, in) layout) and optionally b0, b1, ..."""
    activation: Activation = "relu"
    """Activation of the hidden layers."""
    output_activation: Activation = "identity"
    scale: Finite = 1.0
    """Gain of the random weights."""
    bias: Finite = 0.0
    """Standard deviation of random biases (0: none)."""

    def check(self, where):
        if (self.widths is None) == (self.path is None):
            raise SpecError(f"{where}: give exactly one of widths (random weights) or path "
                            "(an .npz of W0, W1, ...)")
        super().check(where)

    def static_input_size(self):
        return None if self.widths is None else self.widths[0]


class RandomRNN(_NetworkModel):
    """A random recurrent network ``x -> f(W x)``, ``W_ij ~ N(0, gain^2 / (n density))``;
    with ``inputs``, driven: ``[u; h] -> [u; f(W h + W_in u)]``."""

    kind: Literal["random_rnn"]
    n: Count
    """Number of units."""
    gain: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    """Spectral radius of W, about (the edge of chaos of tanh networks is near 1)."""
    density: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Fraction of nonzero weights (sparse storage at <= 0.1)."""
    activation: Activation = "tanh"
    inputs: NonNegative = 0
    """Input units (an input block before the n units, weights N(0, 1 / inputs)); 0: an
    autonomous network."""

    def static_input_size(self):
        return self.inputs


class Pattern(_NetworkModel):
    """Blocks from a grid of ``BlockMatrix.from_pattern`` tokens."""

    kind: Literal["pattern"]
    sizes: Annotated[list[Count], Field(min_length=1)]
    """Block sizes."""
    pattern: Annotated[list[list[str]], Field(min_length=1)]
    """Rows of block tokens: "0", "I", "D", "W", "R=p", "S=n", "Row=n"."""
    scale: Finite = 1.0
    activation: Annotated[
        Annotated[Activation, Tag("one-activation")]
        | Annotated[list[Activation], Field(min_length=1), Tag("activation-per-block")],
        Discriminator(lambda v: "activation-per-block" if isinstance(v, list)
                      else "one-activation")] = "tanh"
    input_block: NonNegative | None = None
    """The block the input overwrites (a driven network); none by default."""
    bias: Finite = 0.0

    def check(self, where):
        n = len(self.sizes)
        if len(self.pattern) != n or any(len(r) != n for r in self.pattern):
            raise SpecError(f"{where}.pattern: expected {n} rows of {n} tokens to match "
                            f"sizes {self.sizes}")
        if isinstance(self.activation, list) and len(self.activation) != n:
            raise SpecError(f"{where}.activation: expected one activation per block ({n}), "
                            f"got {len(self.activation)}")
        if self.input_block is not None and self.input_block >= n:
            raise SpecError(f"{where}.input_block: block {self.input_block} does not exist "
                            f"({n} blocks)")
        super().check(where)

    def static_input_size(self):
        return 0 if self.input_block is None else self.sizes[self.input_block]


class Saved(_NetworkModel):
    """A map saved with :func:`itermap.save`."""

    kind: Literal["saved"]
    path: str


Network = Annotated[MLP | RandomRNN | Pattern | Saved, Field(discriminator="kind")]
NETWORK_MODELS = {"mlp": MLP, "random_rnn": RandomRNN, "pattern": Pattern, "saved": Saved}


# -- analyses -------------------------------------------------------------------------
@dataclass
class Sizes:
    """What the cost estimates know of a network before it is built."""

    dim: int
    nnz: int  # stored weights
    driven: bool
    gain: float | None = None  # the spec's gain (random_rnn) or weight scale; None: unknown


@dataclass
class Cost:
    """An analysis' estimated peak memory and run time, and the keys that drive them."""

    bytes: float = 0.0
    seconds: float = 0.0
    memory_key: str = "network"
    time_key: str = "steps"


class AnalysisModel(SpecModel):
    """Base of every report kind's settings.

    A subclass declares ``kind: Literal["name"]`` and its settings with their
    defaults; ``needs`` restricts the kinds of network it takes; ``cost``
    estimates memory and time from the sizes of its networks (nothing is
    built or allocated to do so).
    """

    kind: str
    #: network kinds this analysis accepts (None: any)
    needs: ClassVar[tuple[str, ...] | None] = None
    #: whether its networks must be driven (have an input block)
    needs_input: ClassVar[bool] = False

    def network_names(self) -> list[str]:
        names = self.__dict__.get("networks")  # a kind over several networks
        if names is not None:
            return list(names)
        one = self.__dict__.get("network")     # a kind that builds its own maps has none
        return [] if one is None else [one]

    def check(self, spec, where: str) -> None:
        """Cross-checks against the spec's networks (beyond the types); raise SpecError."""

    def cost(self, sizes: dict[str, Sizes]) -> Cost:
        return Cost()

    def title(self) -> str:
        return f"{self.kind.replace('_', ' ')} ({', '.join(self.network_names())})"

