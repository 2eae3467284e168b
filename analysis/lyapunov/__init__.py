"""Lyapunov analyses: spectra, covariant vectors, finite-time exponents and scans.

Each analysis loops over the tangent stepper a map hands it
(:meth:`itermap.Map.tangent_stepper`) and falls back on the general one
(:func:`itermap.linalg.general_tangent_stepper`), which names the step where a run
diverged.
"""

from ._clv import CovariantVectors, clv_angles, covariant_lyapunov_vectors, participation_ratio
from ._finite_time import FiniteTimeExponents, finite_time_exponents
from ._scan import (
    LyapunovScan,
    OrbitDiagram,
    gain_family,
    lyapunov_scan,
    mean_field_exponent,
    orbit_diagram,
)
from ._spectrum import LyapunovSpectrum, entropy_rate, kaplan_yorke_dimension, lyapunov_spectrum

__all__ = ["CovariantVectors", "FiniteTimeExponents", "LyapunovScan", "LyapunovSpectrum",
           "OrbitDiagram", "clv_angles", "covariant_lyapunov_vectors", "entropy_rate",
           "finite_time_exponents", "gain_family", "kaplan_yorke_dimension", "lyapunov_scan",
           "lyapunov_spectrum", "mean_field_exponent", "orbit_diagram", "participation_ratio"]
