"""What we learn from an iterative map: fixed points, memory, Lyapunov spectra, graphs.

Every function takes the map first and relies only on the map protocol of
:class:`itermap.Map`: ``dim``, batched ``step``, ``tangent`` and ``jacobian``.
"""

from . import plots
from ._graph import fir_length, sparsity_graph
from ._graph_properties import GraphProperties, graph_properties
from ._memory import ImpulseResponse, MemoryCapacity, impulse_response, memory_capacity
from ._parallel_in_time import NewtonLyapunovScan, newton_lyapunov_scan
from ._probe import WeightStatistics, canonical_permutation, permute_units, probe, weight_statistics
from ._reservoir import EdgeOfChaosScan, edge_of_chaos_scan, effective_spectral_radius
from ._sequence import SequenceComparison, compare_sequence_models, sequence_models
from ._spectra_table import (
    SpectraTable,
    SpectrumEmbedding,
    resample_spectrum,
    spectra_table,
    spectrum_embedding,
)
from ._sweep import SweepFailure, SweepResult, sweep
from ._training import (
    FlipFlopAnalysis,
    ParameterComparison,
    digits_model,
    equal_parameter_comparison,
    flip_flop_analysis,
    sparse_hidden_width,
)
from .fixed_points import (
    STATUS,
    Basins,
    Continuation,
    FixedPoints,
    basins,
    continuation,
    find_fixed_points,
    sample_states,
)
from .lyapunov import (
    CovariantVectors,
    FiniteTimeExponents,
    LyapunovScan,
    LyapunovSpectrum,
    OrbitDiagram,
    clv_angles,
    covariant_lyapunov_vectors,
    entropy_rate,
    finite_time_exponents,
    gain_family,
    kaplan_yorke_dimension,
    lyapunov_scan,
    lyapunov_spectrum,
    mean_field_exponent,
    orbit_diagram,
    participation_ratio,
)

__all__ = [
    # fixed points, basins and continuation
    "STATUS", "FixedPoints", "find_fixed_points", "sample_states", "Basins", "basins",
    "Continuation", "continuation",
    # Lyapunov spectra, covariant vectors, finite-time exponents and scans
    "LyapunovSpectrum", "entropy_rate", "kaplan_yorke_dimension", "lyapunov_spectrum",
    "CovariantVectors", "clv_angles", "covariant_lyapunov_vectors", "participation_ratio",
    "FiniteTimeExponents", "finite_time_exponents", "LyapunovScan", "OrbitDiagram", "gain_family",
    "lyapunov_scan", "mean_field_exponent", "orbit_diagram", "NewtonLyapunovScan",
    "newton_lyapunov_scan",
    # memory
    "ImpulseResponse", "MemoryCapacity", "impulse_response", "memory_capacity",
    # graphs, weights and populations of networks
    "fir_length", "sparsity_graph", "GraphProperties", "graph_properties", "WeightStatistics",
    "canonical_permutation", "permute_units", "probe", "weight_statistics", "SpectraTable",
    "SpectrumEmbedding", "resample_spectrum", "spectra_table", "spectrum_embedding",
    # training, sequence models and reservoirs
    "FlipFlopAnalysis", "ParameterComparison", "digits_model", "equal_parameter_comparison",
    "flip_flop_analysis", "sparse_hidden_width", "SequenceComparison", "compare_sequence_models",
    "sequence_models", "EdgeOfChaosScan", "edge_of_chaos_scan", "effective_spectral_radius",
    # sweeps and figures
    "SweepFailure", "SweepResult", "sweep", "plots",
]
