"""Complex diagonal state-space layers (S4D, S5, LRU) as real iterative maps.

Every number is checked against a plain NumPy complex128 loop of
``h_k = Abar h_{k-1} + Bbar u_k``, ``y_k = Re(C h_k) + D u_k``, with ``Abar`` from
``scipy.linalg.expm`` (zoh, ``Bbar = A^-1 (Abar - I) B``) or the bilinear formula
computed here; the Lyapunov spectrum against ``log|eig(Abar)|`` (closed form); a
complex form of a real system against the real layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import LinearStateSpace, deep_lssl
from tests.conftest import to_np


def discretise(A, B, dt, method):
    """The independent discretisation: complex128, zoh by expm and A^-1 (no block trick)."""
    A, B = np.asarray(A, dtype=complex), np.asarray(B, dtype=complex)
    eye = np.eye(A.shape[0])
    if method == "zoh":
        Ab = scipy.linalg.expm(dt * A)
        return Ab, np.linalg.solve(A, (Ab - eye) @ B)
    M = eye - dt / 2 * A
    return np.linalg.solve(M, eye + dt / 2 * A), np.linalg.solve(M, dt * B)


def loop(Ab, Bb, C, D, u):
    """Outputs y_0 .. y_{L-1} from h = 0: the recurrence, one step at a time."""
    h = np.zeros(Ab.shape[0], dtype=complex)
    ys = []
    for uk in u:
        h = Ab @ h + Bb @ uk
        ys.append((C @ h).real + D @ uk)
    return np.array(ys)


def system(rng, N, P, Q, *, diagonal):
    """A complex (A, B, C, D) with eigenvalues of real part in [-2, -0.1]."""
    lam = -rng.uniform(0.1, 2.0, N) + 1j * rng.uniform(-5.0, 5.0, N)
    if diagonal:
        A = np.diag(lam)
    else:   # a well-conditioned complex basis
        V = np.eye(N) + 0.3 * (rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))) / N
        A = V @ np.diag(lam) @ np.linalg.inv(V)
    B = rng.normal(size=(N, P)) + 1j * rng.normal(size=(N, P))
    C = rng.normal(size=(Q, N)) + 1j * rng.normal(size=(Q, N))
    return A, B, C, rng.normal(size=(Q, P))


def outputs(m, u):
    traj = itermap.iterate(m, m.zeros(), len(u), inputs=u)
    return m.readout(traj.states[1:], u)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 6), P=st.integers(1, 3), Q=st.integers(1, 3),
       dt=st.floats(0.01, 1.0), method=st.sampled_from(["bilinear", "zoh"]),
       diagonal=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_a_complex_layer_is_the_complex_recurrence(N, P, Q, dt, method, diagonal, seed):
    rng = np.random.default_rng(seed)
    A, B, C, D = system(rng, N, P, Q, diagonal=diagonal)
    m = LinearStateSpace(A, B, C, D, dt=dt, method=method)
    assert (m.dim, m.input_size, m.output_size, m.dtype) == (2 * N, P, Q, np.float64)
    Ab, Bb = discretise(A, B, dt, method)
    u = rng.normal(size=(25, P))
    want = loop(Ab, Bb, C, D, u)
    scale = max(1.0, np.abs(want).max())
    np.testing.assert_allclose(outputs(m, u), want, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(m.convolve(u), want, rtol=0, atol=1e-10 * scale)
    K = np.array([(C @ np.linalg.matrix_power(Ab, j) @ Bb).real for j in range(7)])
    np.testing.assert_allclose(m.kernel(7), K, rtol=0, atol=1e-10 * max(1.0, np.abs(K).max()))
    # the realified state is [Re h; Im h] of the complex loop's state
    h = np.zeros(N, dtype=complex)
    for uk in u[:5]:
        h = Ab @ h + Bb @ uk
    x = itermap.iterate(m, m.zeros(), 5, inputs=u[:5]).states[-1]
    np.testing.assert_allclose(x, np.concatenate([h.real, h.imag]), atol=1e-10 * scale)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 6), P=st.integers(1, 3), Q=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_from_discrete_is_the_lru_recurrence(N, P, Q, seed):
    # the LRU's parameterisation: Lambda = exp(-exp(nu) + i theta), gamma = sqrt(1 - |Lambda|^2)
    rng = np.random.default_rng(seed)
    lam = np.exp(-np.exp(rng.uniform(-4.0, 0.5, N)) + 1j * rng.uniform(0, 2 * np.pi, N))
    gamma = np.sqrt(1 - np.abs(lam) ** 2)
    Bm = (rng.normal(size=(N, P)) + 1j * rng.normal(size=(N, P))) / np.sqrt(2 * P)
    C = (rng.normal(size=(Q, N)) + 1j * rng.normal(size=(Q, N))) / np.sqrt(N)
    D = rng.normal(size=(Q, P))
    Bb = gamma[:, None] * Bm
    m = LinearStateSpace.from_discrete(np.diag(lam), Bb, C, D)
    assert (m.dim, m.method, m.dt) == (2 * N, "discrete", 1.0)
    u = rng.normal(size=(30, P))
    want = loop(np.diag(lam), Bb, C, D, u)
    np.testing.assert_allclose(outputs(m, u), want, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m.convolve(u), want, rtol=0, atol=1e-11)
    # nothing discretised: the map's matrices are exactly the realified parameters
    np.testing.assert_array_equal(m.Abar, np.block([[np.diag(lam.real), -np.diag(lam.imag)],
                                                    [np.diag(lam.imag), np.diag(lam.real)]]))
    np.testing.assert_array_equal(m.Bbar, np.concatenate([Bb.real, Bb.imag]))


@pytest.mark.parametrize("method", ["bilinear", "zoh", "discrete"])
def test_the_protocol_holds_for_a_complex_layer(method):
    rng = np.random.default_rng(3)
    A, B, C, D = system(rng, 4, 2, 3, diagonal=False)
    if method == "discrete":
        m = LinearStateSpace.from_discrete(np.diag(0.9 * np.exp(1j * rng.uniform(0, 3, 4))),
                                           B, C, D)
    else:
        m = LinearStateSpace(A, B, C, D, dt=0.2, method=method)
    assert itermap.check_map(m, rng=0).passed
    x, v, w, u = (rng.normal(size=8), rng.normal(size=(8, 3)), rng.normal(size=(3, 8)),
                  rng.normal(size=2))
    J = m.jacobian(x, u)
    np.testing.assert_allclose(m.tangent(x, v, u), J @ v, atol=1e-14)
    np.testing.assert_allclose(m.vjp(x, w, u), w @ J, atol=1e-14)
    np.testing.assert_allclose(m.step(x, u), m.Abar @ x + m.Bbar @ u, atol=1e-14)


@pytest.mark.parametrize("method", ["bilinear", "zoh"])
def test_the_lyapunov_spectrum_is_log_abs_eig_abar_twice(method):
    rng = np.random.default_rng(5)
    N = 3
    lam = -rng.uniform(0.2, 2.0, N) + 1j * rng.uniform(-4.0, 4.0, N)
    m = LinearStateSpace(np.diag(lam), np.ones(N), np.ones(N), dt=0.3, method=method)
    Ab, _ = discretise(np.diag(lam), np.ones((N, 1)), 0.3, method)
    want = np.sort(np.repeat(np.log(np.abs(np.linalg.eigvals(Ab))), 2))[::-1]
    res = itermap.analysis.lyapunov_spectrum(m, rng.normal(size=2 * N), 2000,
                                             inputs=np.zeros(1), rng=1)
    np.testing.assert_allclose(np.asarray(res.exponents).ravel(), want, atol=5e-3)


@pytest.mark.parametrize("method", ["bilinear", "zoh"])
def test_a_real_system_in_complex_form_gives_the_real_layers_outputs(method):
    # a real A with complex eigenvalues, diagonalised: A = V diag(lam) V^-1 with conjugate
    # pairs, so C h (h = V^-1 x) is real and the complex layer is the real one
    rng = np.random.default_rng(7)
    A = rng.normal(size=(4, 4)) - 2.5 * np.eye(4)
    B, C, D = rng.normal(size=(4, 2)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    lam, V = np.linalg.eig(A)
    assert np.iscomplexobj(lam) and np.abs(lam.imag).max() > 0.1
    Vi = np.linalg.inv(V)
    real = LinearStateSpace(A, B, C, D, dt=0.25, method=method)
    cplx = LinearStateSpace(np.diag(lam), Vi @ B, C @ V, D, dt=0.25, method=method)
    u = rng.normal(size=(40, 2))
    want = loop(*discretise(A, B, 0.25, method), C, D, u)
    for m in (real, cplx):
        np.testing.assert_allclose(outputs(m, u), want, atol=1e-11)
        np.testing.assert_allclose(m.convolve(u), want, atol=1e-11)
    np.testing.assert_allclose(cplx.kernel(10), real.kernel(10), atol=1e-11)


def test_a_real_a_with_a_complex_b_is_a_complex_system():
    rng = np.random.default_rng(8)
    A = -np.diag([0.5, 1.0])
    B, C = np.array([1.0 + 2j, -1j]), np.array([1.0, 1.0])
    m = LinearStateSpace(A, B, C, dt=0.1, method="zoh")
    u = rng.normal(size=(20, 1))
    want = loop(*discretise(A, B[:, None], 0.1, "zoh"), C[None, :], np.zeros((1, 1)), u)
    assert m.dim == 4 and m.is_complex
    np.testing.assert_allclose(outputs(m, u), want, atol=1e-13)


def test_the_real_path_is_unchanged():
    # real inputs: the float64 formulas, bit for bit; the real dimension and dtype
    rng = np.random.default_rng(9)
    A, B = itermap.systems.hippo("legs", 4)
    B = np.hstack([B, rng.normal(size=(4, 1))])
    dt = 0.3
    m = LinearStateSpace(A, B, np.ones(4), dt=dt)
    M = np.eye(4) - 0.5 * dt * A
    np.testing.assert_array_equal(m.Abar, np.linalg.solve(M, np.eye(4) + 0.5 * dt * A))
    np.testing.assert_array_equal(m.Bbar, np.linalg.solve(M, dt * B))
    z = LinearStateSpace(A, B, np.ones(4), dt=dt, method="zoh")
    big = np.zeros((6, 6))
    big[:4, :4], big[:4, 4:] = A, B
    E = scipy.linalg.expm(dt * big)
    np.testing.assert_array_equal(z.Abar, E[:4, :4])
    np.testing.assert_array_equal(z.Bbar, E[:4, 4:])
    assert (m.dim, m.is_complex, m.dtype) == (4, False, np.float64)
    assert m.C is m._C   # the readout is C itself
    m32 = LinearStateSpace(A.astype(np.float32), B, np.ones(4), dt=dt)
    assert m32.dtype == np.float32 and m32.dim == 4
    assert repr(m) == "LinearStateSpace(N=4, inputs=2, outputs=1, dt=0.3, method='bilinear')"


def test_complex64_gives_a_float32_map_close_to_complex128():
    rng = np.random.default_rng(10)
    A, B, C, D = system(rng, 3, 1, 2, diagonal=True)
    m64 = LinearStateSpace(A, B, C, D, dt=0.1, method="zoh")
    m32 = LinearStateSpace(A.astype(np.complex64), B, C, D, dt=0.1, method="zoh")
    assert m64.dtype == np.float64 and m32.dtype == np.float32
    assert m32.Abar.dtype == m32.Bbar.dtype == m32.D.dtype == np.float32
    assert m32.B.dtype == m32.C.dtype == np.complex64
    u = rng.normal(size=(30, 1))
    y32 = outputs(m32, u.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, outputs(m64, u), atol=2e-5 * np.abs(outputs(m64, u)).max())


@pytest.mark.parametrize("build", ["zoh", "discrete"])
def test_save_load_to_and_repr_keep_a_complex_layer(tmp_path, build):
    rng = np.random.default_rng(11)
    A, B, C, D = system(rng, 3, 2, 1, diagonal=True)
    m = (LinearStateSpace(A, B, C, D, dt=0.2, method="zoh") if build == "zoh"
         else LinearStateSpace.from_discrete(np.diag([0.9j, 0.5, -0.3 + 0.2j]), B, C, D))
    path = tmp_path / "ssm.npz"
    itermap.save(m, path)
    back = itermap.load(path)
    moved = m.to("numpy")
    u = rng.normal(size=(15, 2))
    for other in (back, moved):
        assert isinstance(other, LinearStateSpace) and repr(other) == repr(m)
        np.testing.assert_array_equal(other.A, m.A)
        np.testing.assert_array_equal(other.Abar, m.Abar)
        np.testing.assert_array_equal(other.Bbar, m.Bbar)
        np.testing.assert_array_equal(outputs(other, u), outputs(m, u))
    assert repr(m).startswith("LinearStateSpace(N=3 complex, dim=6, inputs=2, outputs=1")


def test_a_deep_lssl_of_complex_layers_is_its_layers_composed():
    rng = np.random.default_rng(12)
    A, B, C, D = system(rng, 3, 1, 2, diagonal=True)
    l1 = LinearStateSpace(A, B, C, D, dt=0.2, method="zoh")
    l2 = LinearStateSpace.from_discrete(np.diag([0.8j, 0.6 + 0.3j]),
                                        rng.normal(size=(2, 2)) + 1j, [1.0, 1j])
    net = deep_lssl([l1, l2], activation="tanh")
    assert net.sizes == (1, 6, 2, 4, 1)
    T = 25
    u = rng.normal(size=(T, 1))
    traj = itermap.iterate(net, net.zeros(), T + 2, inputs=np.concatenate([u, np.zeros((2, 1))]))
    Ab1, Bb1 = discretise(A, B, 0.2, "zoh")
    z1 = np.tanh(loop(Ab1, Bb1, C, D, u))
    want = loop(l2.A, l2.B, l2.C, np.zeros((1, 2)), z1)
    np.testing.assert_allclose(net.readout(traj.states[2:T + 2]), want, atol=1e-11)


@pytest.mark.parametrize("make, name, exc", [
    (lambda: LinearStateSpace(-np.eye(2) * (1 + 1j), np.ones(2), np.ones(2), 1j * np.ones((1, 1)),
                              dt=0.1), "D", TypeError),
    (lambda: LinearStateSpace.from_discrete(0.5j * np.eye(2), np.ones(2), np.ones(2),
                                            [[1 + 1j]]), "D", TypeError),
    (lambda: LinearStateSpace(np.diag([-1 + np.nan * 1j, -1]), np.ones(2), np.ones(2), dt=0.1),
     "A", ValueError),
    (lambda: LinearStateSpace(-np.eye(2), [1j, np.inf], np.ones(2), dt=0.1), "B", ValueError),
    (lambda: LinearStateSpace(-np.eye(2), np.ones(2), [1j, complex(0, np.inf)], dt=0.1), "C",
     ValueError),
    (lambda: LinearStateSpace(-np.ones((2, 3)) * 1j, np.ones(2), np.ones(2), dt=0.1), "A",
     ValueError),
    (lambda: LinearStateSpace(-np.eye(2) * 1j, np.ones(3) * 1j, np.ones(2), dt=0.1), "B",
     ValueError),
    (lambda: LinearStateSpace(-np.eye(2) * 1j, np.ones(2), np.ones(3) * 1j, dt=0.1), "C",
     ValueError),
    (lambda: LinearStateSpace(-np.eye(2) * 1j, np.ones(2), np.ones(2), np.ones((2, 2)), dt=0.1),
     "D", ValueError),
    (lambda: LinearStateSpace.from_discrete(np.ones((2, 3)) * 1j, np.ones(2), np.ones(2)),
     "Abar", ValueError),
    (lambda: LinearStateSpace.from_discrete(np.eye(2) * 1j, np.ones(3), np.ones(2)),
     "Bbar", ValueError),
    (lambda: LinearStateSpace.from_discrete(np.eye(2) * 1j, [np.nan, 1j], np.ones(2)),
     "Bbar", ValueError),
    (lambda: LinearStateSpace(np.diag([-1 + 1j, -1]), np.ones(2), np.ones(2), dt=0.1,
                              method="euler"), "method", ValueError),
])
def test_bad_input_is_refused_naming_the_parameter(make, name, exc):
    with pytest.raises(exc, match=name):
        make()


def test_a_complex_layer_on_every_namespace(xp):
    # array_api_strict catches NumPy-only calls; cupy runs where a GPU is
    rng = np.random.default_rng(13)
    A, B, C, D = system(rng, 3, 2, 2, diagonal=False)
    m = LinearStateSpace(xp.asarray(A), xp.asarray(B), xp.asarray(C), xp.asarray(D), dt=0.2,
                         method="zoh")
    assert m.dtype == xp.float64 and m.dim == 6
    u = rng.normal(size=(20, 2))
    want = loop(*discretise(A, B, 0.2, "zoh"), C, D, u)
    traj = itermap.iterate(m, xp.zeros(6, dtype=xp.float64), 20, inputs=xp.asarray(u))
    np.testing.assert_allclose(to_np(m.readout(traj.states[1:, ...], xp.asarray(u))), want,
                               atol=1e-11)
    np.testing.assert_allclose(to_np(m.convolve(xp.asarray(u))), want, atol=1e-11)
    lru = LinearStateSpace.from_discrete(xp.asarray(np.diag([0.5j, 0.9 + 0j]), dtype=xp.complex64),
                                         xp.ones((2, 1)), xp.ones((1, 2)))
    assert lru.dtype == xp.float32 and lru.dim == 4
    J = m.jacobian(xp.zeros(6, dtype=xp.float64), xp.zeros(2, dtype=xp.float64))
    np.testing.assert_array_equal(to_np(J), to_np(m.Abar))


def test_from_discrete_with_real_parameters_is_the_real_recurrence():
    rng = np.random.default_rng(14)
    Ab, Bb, C = 0.3 * rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=(2, 3))
    m = LinearStateSpace.from_discrete(Ab, Bb, C)
    assert (m.dim, m.is_complex) == (3, False)
    np.testing.assert_array_equal(m.Abar, Ab)
    np.testing.assert_array_equal(m.D, np.zeros((2, 2)))
    u = rng.normal(size=(20, 2))
    np.testing.assert_allclose(outputs(m, u), loop(Ab, Bb, C, np.zeros((2, 2)), u), atol=1e-12)
