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
from .fixed_points import (  # noqa: E402
    STATUS,
    Basins,
    Continuation,
    FixedPoints,
    basins,
    continuation,
    find_fixed_points,
    sample_states,
)

__all__ += ["Basins", "Continuation", "STATUS", "basins", "continuation"]
__all__ += ["FixedPoints", "ImpulseResponse", "MemoryCapacity", "find_fixed_points",
            "fir_length", "impulse_response", "memory_capacity", "sample_states",
            "sparsity_graph"]

from ._graph_properties import GraphProperties, graph_properties  # noqa: E402

__all__ += ["GraphProperties", "graph_properties"]

from ._probe import (  # noqa: E402
    WeightStatistics,
    canonical_permutation,
    permute_units,
    probe,
    weight_statistics,
)

__all__ += ["WeightStatistics", "canonical_permutation", "permute_units", "probe",
            "weight_statistics"]

from ._spectra_table import (  # noqa: E402
    SpectraTable,
    SpectrumEmbedding,
    resample_spectrum,
    spectra_table,
    spectrum_embedding,
)

__all__ += ["SpectraTable", "SpectrumEmbedding", "resample_spectrum", "spectra_table",
            "spectrum_embedding"]

from ._sweep import SweepFailure, SweepResult, sweep  # noqa: E402

__all__ += ["SweepFailure", "SweepResult", "sweep"]

from ._lyapunov import (  # noqa: E402
    LyapunovSpectrum,
    entropy_rate,
    kaplan_yorke_dimension,
    lyapunov_spectrum,
)

__all__ += ["LyapunovSpectrum", "entropy_rate", "kaplan_yorke_dimension", "lyapunov_spectrum"]

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

from ._training import (  # noqa: E402
    FlipFlopAnalysis,
    ParameterComparison,
    digits_model,
    equal_parameter_comparison,
    flip_flop_analysis,
    sparse_hidden_width,
)

__all__ += ["FlipFlopAnalysis", "ParameterComparison", "digits_model",
            "equal_parameter_comparison", "flip_flop_analysis", "sparse_hidden_width"]

from ._clv import (  # noqa: E402
    CovariantVectors,
    clv_angles,
    covariant_lyapunov_vectors,
    participation_ratio,
)

__all__ += ["CovariantVectors", "clv_angles", "covariant_lyapunov_vectors",
            "participation_ratio"]

from ._finite_time import FiniteTimeExponents, finite_time_exponents  # noqa: E402

__all__ += ["FiniteTimeExponents", "finite_time_exponents"]

from ._parallel_in_time import NewtonLyapunovScan, newton_lyapunov_scan  # noqa: E402

__all__ += ["NewtonLyapunovScan", "newton_lyapunov_scan"]

from ._sequence import (  # noqa: E402
    SequenceComparison,
    compare_sequence_models,
    sequence_models,
)

__all__ += ["SequenceComparison", "compare_sequence_models", "sequence_models"]

from ._reservoir import EdgeOfChaosScan, edge_of_chaos_scan, effective_spectral_radius  # noqa: E402

__all__ += ["EdgeOfChaosScan", "edge_of_chaos_scan", "effective_spectral_radius"]
