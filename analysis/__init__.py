"""What we learn from an iterative map: fixed points, memory, Lyapunov spectra, graphs.

Every function takes the map first and relies only on the map protocol of
:class:`itermap.Map`: ``dim``, batched ``step``, ``tangent`` and ``jacobian``.
"""

from ._lyapunov import LyapunovSpectrum, kaplan_yorke_dimension, lyapunov_spectrum

__all__: list[str] = ["LyapunovSpectrum", "kaplan_yorke_dimension", "lyapunov_spectrum"]
