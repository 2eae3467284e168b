"""Round 23, lead: a user's step that returns a coarser float than the starts."""

import numpy as np
import pytest

from itermap.analysis import find_fixed_points

A, B = 1.4, 0.3


class Float32Henon:
    """Hénon's map written by a user whose step returns float32 (a float32 model)."""

    dim = 2

    def step(self, x, u=None):
        x = np.asarray(x)
        return np.stack([1 - A * x[..., 0] ** 2 + x[..., 1], B * x[..., 0]],
                        axis=-1).astype(np.float32)

    def jacobian(self, x, u=None):
        x = np.asarray(x)
        J = np.zeros(x.shape[:-1] + (2, 2))
        J[..., 0, 0], J[..., 0, 1], J[..., 1, 0] = -2 * A * x[..., 0], 1.0, B
        return J


def _closed_form():
    # x = 1 - a x^2 + b x: a x^2 + (1 - b) x - 1 = 0
    xs = np.sort(np.roots([A, 1 - B, -1]))
    return np.stack([xs, B * xs], axis=1)


def test_float64_starts_on_a_float32_step_meet_float32s_tolerance():
    # before: tol stayed float64's 1e-10, which float32 residuals never meet: 0 of 5 starts
    # converged, every one "stalled", with no word of why
    x0 = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    fp = find_fixed_points(Float32Henon(), x0, progress=False)
    assert fp.n_converged == 5 and len(fp) == 2
    P = np.asarray(fp.points)
    np.testing.assert_allclose(P[np.argsort(P[:, 0])], _closed_form(), atol=1e-5)


def test_a_tol_below_the_steps_rounding_is_refused_naming_the_step():
    x0 = np.random.default_rng(1).uniform(-1, 1, (3, 2))
    with pytest.raises(ValueError, match=r"map: its step returns float32 for float64 starts; "
                                         r"tol=1e-10 .*a step that returns float64"):
        find_fixed_points(Float32Henon(), x0, tol=1e-10, progress=False)
    fp = find_fixed_points(Float32Henon(), x0, tol=1e-5, progress=False)
    assert len(fp) >= 1 and np.all(np.asarray(fp.residuals) <= 1e-5)
