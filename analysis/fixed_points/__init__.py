"""Fixed points, periodic orbits, slow points, basins and continuation of a map.

:func:`find_fixed_points` is a short driver over named methods, in the manner of
:func:`scipy.integrate.solve_ivp` and its ``METHODS``: it checks its inputs, runs
the method that ``method=`` names, and turns what the method returns into a
:class:`FixedPoints` (stability, orbit labels, least periods).

The methods (``find_fixed_points``' ``method`` says what each does): ``"auto"`` (in
``_driver``), ``"newton"`` (``_newton``, its search state in ``_search``, phase (2) of
small maps in ``_small``; globalised Newton [3]_ with deflation [5]_),
``"newton-krylov"`` (``_newton_krylov`` [4]_), ``"homotopy"`` (``_homotopy`` [7]_) and
``"q"`` (``_q``, Sussillo and Barak's q-minimisation [1]_ [2]_). Clustering, slow
points, deflation, basins [6]_ and continuation [7]_ each live in a module of their own.

Adding a method
---------------
A method is a callable ``method(problem) -> Solution`` registered under its name
in :data:`METHODS` (``_driver.py``). ``problem`` (``_common.Problem``) holds the
checked inputs: the map, ``F`` (the map raised to the period under the constant
input, with ``value(x)``, ``jacobian(x)`` and, on a torus, residuals taken modulo
the periods), the starts ``x`` (B, dim) on the map's backend and their namespace
``xp``, and ``tol``, ``max_iter``, ``unique_tol``, ``patience``, ``q_steps``,
``slow_points``, ``progress``, ``deflation`` (as given: ``"auto"``, a bool or a
radius; a method that does not deflate ignores it). The method must

- return a ``_common.Solution``: the ``points`` (m, dim) in ``xp``, each with
  residual ``||F^p(x) - x|| <= tol`` (``residuals``, host float64), merged within
  ``unique_tol`` where it finds points many times (the driver merges again, within
  ``unique_tol`` plus each point's error bound, so points a last polish brings
  together need not be); one ``status`` per start (an int8 code of
  :data:`STATUS`, the same order as the starts); ``jacobians`` of ``F^p`` at the
  points, or None when it forms none; ``eigenvalues`` (m, k), the multipliers
  by modulus, descending (all ``dim`` of them, or the ``k`` leading ones); and
  with ``slow_points`` the slow-point fields of :class:`FixedPoints`;
- refuse up front, with ``check_memory`` and a message naming ``method``, a
  problem whose memory the machine lacks, and never form a ``dim x dim`` array
  if it is meant for large maps;
- show progress as starts finished (a tqdm bar over the starts, as
  ``_common._progress_bar`` makes), and draw no randomness (the starts carry it).

The driver validates the name, resolves ``"auto"``, merges the points, and computes
stability, orbit labels and least periods from them, for every method alike.

References
----------
.. [1] D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics
   in high-dimensional recurrent neural networks", Neural Computation 25(3), 2013.
.. [2] M. D. Golub and D. Sussillo, "FixedPointFinder: a TensorFlow toolbox for
   identifying and characterizing fixed points in recurrent neural networks",
   JOSS 3(31), 2018.
.. [3] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996).
.. [4] D. A. Knoll and D. E. Keyes, "Jacobian-free Newton-Krylov methods: a survey
   of approaches and applications", J. Comput. Phys. 193, 2004.
.. [5] P. E. Farrell, A. Birkisson and S. W. Funke, "Deflation techniques for
   finding distinct solutions of nonlinear partial differential equations",
   SIAM J. Sci. Comput. 37(4), 2015.
.. [6] H. E. Nusse and J. A. Yorke, "Dynamics: Numerical Explorations", 2nd ed.,
   Springer 1998.
.. [7] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation Methods",
   SIAM 2003.
"""

from ._basins import Basins, basins
from ._continuation import Continuation, continuation
from ._driver import METHODS, find_fixed_points
from ._result import STATUS, FixedPoints
from ._starts import sample_states

__all__ = ["METHODS", "STATUS", "Basins", "Continuation", "FixedPoints", "basins",
           "continuation", "find_fixed_points", "sample_states"]
