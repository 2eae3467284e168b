"""What we learn from an iterative map: fixed points, memory, Lyapunov spectra, graphs.

Every function takes the map first and relies only on the map protocol of
:class:`itermap.Map`: ``dim``, batched ``step``, ``tangent`` and ``jacobian``.
"""

__all__: list[str] = []

from ._fixed_points import FixedPoints, find_fixed_points, sample_states  # noqa: E402
from ._graph import fir_length, sparsity_graph  # noqa: E402
from ._memory import (  # noqa: E402
    ImpulseResponse,
    MemoryCapacity,
    impulse_response,
    memory_capacity,
)

__all__ += ["FixedPoints", "ImpulseResponse", "MemoryCapacity", "find_fixed_points",
            "fir_length", "impulse_response", "memory_capacity", "sample_states",
            "sparsity_graph"]

from ._sweep import SweepFailure, SweepResult, sweep  # noqa: E402

__all__ += ["SweepFailure", "SweepResult", "sweep"]

from ._lyapunov import LyapunovSpectrum, kaplan_yorke_dimension, lyapunov_spectrum  # noqa: E402

__all__ += ["LyapunovSpectrum", "kaplan_yorke_dimension", "lyapunov_spectrum"]

from . import plots  # noqa: E402
from ._scan import (  # noqa: E402
    LyapunovScan,
    OrbitDiagram,
    gain_family,
    lyapunov_scan,
    mean_field_exponent,
    orbit_diagram,
)

__all__ += ["plots", "LyapunovScan", "OrbitDiagram", "gain_family", "lyapunov_scan",
            "mean_field_exponent", "orbit_diagram"]

from ._parallel_in_time import NewtonLyapunovScan, newton_lyapunov_scan  # noqa: E402

__all__ += ["NewtonLyapunovScan", "newton_lyapunov_scan"]
