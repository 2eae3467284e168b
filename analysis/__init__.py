"""What we learn from an iterative map: fixed points, memory, Lyapunov spectra, graphs.

Every function takes the map first and relies only on the map protocol of
:class:`itermap.Map`: ``dim``, batched ``step``, ``tangent`` and ``jacobian``.
"""

__all__: list[str] = []

from ._graph import fir_length, sparsity_graph  # noqa: E402
from ._memory import (  # noqa: E402
    ImpulseResponse,
    MemoryCapacity,
    impulse_response,
    memory_capacity,
)

__all__ += ["ImpulseResponse", "MemoryCapacity", "fir_length", "impulse_response",
            "memory_capacity", "sparsity_graph"]

from ._sweep import SweepFailure, SweepResult, sweep  # noqa: E402

__all__ += ["SweepFailure", "SweepResult", "sweep"]
