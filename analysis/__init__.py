"""What we learn from an iterative map: fixed points, memory, Lyapunov spectra, graphs.

Every function takes the map first and relies only on the map protocol of
:class:`itermap.Map`: ``dim``, batched ``step``, ``tangent`` and ``jacobian``.
"""

__all__: list[str] = []

from ._fixed_points import FixedPoints, find_fixed_points, sample_states  # noqa: E402

__all__ += ["FixedPoints", "find_fixed_points", "sample_states"]
