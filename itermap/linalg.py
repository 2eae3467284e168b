"""The linear algebra the analyses share: the tangent frame's reorthonormaliser, the general
tangent stepper, batched solves, and IDR(s) for large nonsymmetric systems.

Examples
--------
>>> from itermap.linalg import batched_solve
>>> A = np.stack([np.eye(2) * 2.0, np.eye(2) * 4.0])
>>> batched_solve(A, np.ones((2, 2)))
array([[0.5 , 0.5 ],
       [0.25, 0.25]])
"""

from ._running._fused_steppers import general_tangent_stepper
from ._running._idrs import IDRSolution, idrs
from ._running._linalg import batched_eigvals, batched_solve, damped_normal_solve
from ._running._reorth import Reorthonormalizer

__all__ = ["IDRSolution", "Reorthonormalizer", "batched_eigvals", "batched_solve",
           "damped_normal_solve", "general_tangent_stepper", "idrs"]
