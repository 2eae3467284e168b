"""Round 23: researchers who bring their own maps, torch networks and odd inputs (r23-own-code).

Each test fails before its fix; every number is checked against an independent computation
(a plain NumPy loop, torch's own forward pass, a closed form).
"""

import numpy as np
import pytest

import itermap
from itermap import analysis as A


class Henon:
    """A dynamicist's own map: a plain class, batched, with a hand-written Jacobian."""

    dim = 2

    def step(self, x):
        return np.stack([1 - 1.4 * x[..., 0] ** 2 + x[..., 1], 0.3 * x[..., 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -2.8 * x[..., 0]
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = 0.3
        return J


class ListStep(Henon):
    def step(self, x):  # the coordinates as a list, not stacked
        return [1 - 1.4 * x[..., 0] ** 2 + x[..., 1], 0.3 * x[..., 0]]


class WrongShape(Henon):
    def step(self, x):
        return super().step(x)[..., :1]


class Complex(Henon):
    def step(self, x):
        return super().step(x) + 0j


class JacobianWrongShape(Henon):
    def jacobian(self, x):
        return super().jacobian(x)[..., :1]


X0 = np.array([0.1, 0.1])
ANALYSES = {
    "iterate": lambda m: itermap.iterate(m, X0, 5),
    "covariant_lyapunov_vectors": lambda m: A.covariant_lyapunov_vectors(m, X0, 20),
    "finite_time_exponents": lambda m: A.finite_time_exponents(m, X0, 5, 20),
}


@pytest.mark.parametrize("analysis", sorted(ANALYSES))
@pytest.mark.parametrize("cls, error, match", [
    (ListStep, TypeError, r"map: its step returned a list, not an array.*ListStep"),
    (WrongShape, ValueError, r"map: its step returned shape \((1, )?1,?\).*WrongShape"),
    (Complex, TypeError, r"map: its step returned complex dtype complex128.*Complex"),
])
def test_a_plain_class_whose_step_breaks_the_protocol_is_named(analysis, cls, error, match):
    # before: AttributeError 'list' object has no attribute 'shape', an IndexError deep in
    # the stepper, or a complex trajectory (iterate) and "x: a state must be real" (the others)
    with pytest.raises(error, match=match):
        ANALYSES[analysis](cls())


@pytest.mark.parametrize("analysis", ["lyapunov_spectrum", "covariant_lyapunov_vectors"])
def test_a_jacobian_of_the_wrong_shape_is_named_not_a_matmul_error(analysis):
    call = {"lyapunov_spectrum": lambda m: A.lyapunov_spectrum(m, X0, 20),
            "covariant_lyapunov_vectors": ANALYSES["covariant_lyapunov_vectors"]}[analysis]
    with pytest.raises(ValueError, match=r"map: its jacobian returned shape \(1, 2, 1\).*"
                                         r"expected \(1, 2, 2\) \(map JacobianWrongShape"):
        call(JacobianWrongShape())


def test_the_checked_plain_class_still_gives_the_henon_exponents():
    # the sum of the exponents is ln|det J| = ln 0.3 exactly; the largest is ~0.42 (Henon 1976)
    res = A.lyapunov_spectrum(Henon(), X0, 4000, transient=100, rng=0)
    assert abs(res.exponents.sum() - np.log(0.3)) < 1e-10
    assert 0.40 < res.exponents[0] < 0.44
    traj = itermap.iterate(Henon(), X0, 3)
    x = X0.copy()
    for k in range(3):  # a plain loop
        x = np.array([1 - 1.4 * x[0] ** 2 + x[1], 0.3 * x[0]])
        np.testing.assert_allclose(traj.states[k + 1], x, rtol=0, atol=1e-15)


def test_check_map_names_a_step_that_changes_its_input_in_place():
    class Mutates(Henon):
        def step(self, x):
            y = super().step(x)
            x[...] = 0.0
            return y

    # before: "a batched step differs from row-by-row steps", which points elsewhere
    with pytest.raises(itermap.ConformanceError, match=r"step: changed its argument x in place"):
        itermap.check_map(Mutates(), rng=0)


def test_check_map_names_a_step_that_is_not_deterministic():
    class Noisy(Henon):
        gen = np.random.default_rng(0)

        def step(self, x):
            return super().step(x) + 1e-3 * self.gen.standard_normal(x.shape)

    with pytest.raises(itermap.ConformanceError, match=r"step: two calls on the same states "
                                                       r"differ.*deterministic"):
        itermap.check_map(Noisy(), rng=0)


def test_a_plain_function_passed_as_a_map_is_told_about_function_map():
    with pytest.raises(TypeError, match=r"itermap\.FunctionMap\(f, dim, jacobian='central'\)"):
        itermap.iterate(lambda x: 3.9 * x * (1 - x), np.array([0.2]), 3)

    class ConstantJacobian:  # a linear map's matrix given as its "jacobian"
        dim = 2
        jacobian = 0.5 * np.eye(2)

        def step(self, x):
            return 0.5 * x

    with pytest.raises(TypeError, match=r"its jacobian is a ndarray, not a function of x"):
        itermap.as_map(ConstantJacobian())


class OneStateHenon:
    """A user's class written for one state at a time (the small-map stepper runs it)."""

    dim = 2

    def __init__(self, a, b):
        self.a, self.b = a, b

    def step(self, x):
        return np.array([1 - self.a * x[0] ** 2 + x[1], self.b * x[0]])

    def jacobian(self, x):
        return np.array([[-2 * self.a * x[0], 1.0], [self.b, 0.0]])


def _escape_step(a, b, x, n):
    """The first step at which a plain loop of the Henon map leaves the floats."""
    with np.errstate(all="ignore"):
        for k in range(1, n + 1):
            x = np.array([1 - a * x[0] ** 2 + x[1], b * x[0]])
            if not np.all(np.isfinite(x)):
                return k
    return None


@pytest.mark.parametrize("mode", ["0", "1"])
@pytest.mark.parametrize("analysis", ["lyapunov_spectrum", "finite_time_exponents",
                                      "covariant_lyapunov_vectors", "continue_from"])
def test_an_escaping_orbit_of_a_one_state_map_is_a_divergence(analysis, mode, monkeypatch):
    # found by hypothesis in test_small_maps_jit (a = 1.375, b = 0.34375): the small-map
    # stepper stopped at the overflow and the general stepper, rerun to name it, called the
    # one-state step on a batch: "its step failed on a batch of states" or an IndexError
    pytest.importorskip("numba") if mode == "1" else None
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m, x0 = OneStateHenon(1.375, 0.34375), np.array([0.05, 0.02])
    k = _escape_step(1.375, 0.34375, x0, 60)
    assert k == 39
    call = {
        "lyapunov_spectrum": lambda: A.lyapunov_spectrum(m, x0, 50, rng=0),
        "finite_time_exponents": lambda: A.finite_time_exponents(m, x0, 5, 50, transient=0,
                                                                  rng=0),
        "covariant_lyapunov_vectors": lambda: A.covariant_lyapunov_vectors(m, x0, 50,
                                                                           transient=0, rng=0),
        "continue_from": lambda: A.lyapunov_spectrum(
            m, None, 40, continue_from=A.lyapunov_spectrum(m, x0, 10, rng=0)),
    }[analysis]
    with pytest.raises(itermap.DivergenceError, match=rf"at step {k}\b"):
        call()


@pytest.mark.parametrize("mode", ["0", "1"])
def test_an_exact_collapse_of_a_one_state_map_gives_minus_inf(mode, monkeypatch):
    # a nilpotent map (J = [[0, 1/2], [0, 0]], J^2 = 0): both exponents are -inf, as for the
    # same map written batched; before, the general stepper called the one-state step on a batch
    pytest.importorskip("numba") if mode == "1" else None
    monkeypatch.setenv("ITERMAP_NUMBA", mode)

    class Nilpotent:
        dim = 2

        def step(self, x):
            return np.array([0.5 * x[1], 0.0])

        def jacobian(self, x):
            return np.array([[0.0, 0.5], [0.0, 0.0]])

    res = A.lyapunov_spectrum(Nilpotent(), np.ones(2), 10, rng=0)
    assert np.all(np.isneginf(res.exponents)) and res.n_collapsed == 2
    fte = A.finite_time_exponents(Nilpotent(), np.ones(2), 5, 10, rng=0)
    assert np.all(np.isneginf(fte.mean))


def test_a_float32_network_driven_by_float64_inputs_stays_float32():
    # torch's models are float32, NumPy's inputs float64: the step turned the run into a
    # float64 one (check_map: "step: turned dtype float32 into float64"), where the recurrent
    # maps keep float32; the numbers are a float32 NumPy loop's
    rng = np.random.default_rng(3)
    W = (0.5 * rng.standard_normal((6, 6))).astype(np.float32)
    m = itermap.IterativeMap(W, sizes=[2, 4], input_block=0)
    u = rng.standard_normal((5, 2))               # float64
    assert itermap.check_map(m, m.zeros(3), u=u[:3]).passed
    traj = itermap.iterate(m, m.zeros(), 5, inputs=u)
    assert traj.states.dtype == np.float32
    x = np.zeros(6, np.float32)
    for k in range(5):  # the input block is set to u before the product and after it
        x = np.tanh(W @ np.concatenate([u[k].astype(np.float32), x[2:]]))
        x[:2] = u[k]
        np.testing.assert_allclose(traj.states[k + 1], x, rtol=1e-6, atol=1e-6)
    assert itermap.iterate(m, m.zeros(), 5, inputs=u[0]).final.dtype == np.float32


def test_torchscript_modules_and_rnn_cells_are_told_what_to_pass():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    mlp = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    with pytest.raises(TypeError, match=r"RecursiveScriptModule; a TorchScript module is read "
                                        r"through its weights: from_torch\(model\.state_dict"):
        itermap.from_torch(torch.jit.script(mlp))
    # the route the message gives: torch's own forward pass is the reference
    m = itermap.from_torch(torch.jit.script(mlp).state_dict(), ["Linear", "Tanh", "Linear"])
    x = np.random.default_rng(0).standard_normal((2, 4))
    with torch.no_grad():
        ref = mlp(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(m.forward(x), ref, rtol=0, atol=1e-14)
    cell = nn.GRUCell(3, 5).double()
    with pytest.raises(TypeError, match=r"GRUCell; a cell is one step of a one-layer GRU: copy "
                                        r"its weights into nn\.GRU\(input_size, hidden_size\)"):
        itermap.from_torch(cell)
    gru = nn.GRU(3, 5).double()
    gru.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    xs, h = np.random.default_rng(1).standard_normal((4, 3)), torch.zeros(5, dtype=torch.float64)
    with torch.no_grad():
        for t in range(4):
            h = cell(torch.as_tensor(xs[t]), h)
    np.testing.assert_allclose(itermap.from_torch(gru).run(xs)[1][0], h.numpy(), atol=1e-14)


@pytest.mark.parametrize("fmt", ["lil", "dok"])
@pytest.mark.parametrize("kind", ["matrix", "array"])
def test_weights_in_every_scipy_sparse_format_give_the_dense_run(fmt, kind):
    # lil was refused as "weights must be real, got dtype object", dok with an AttributeError
    sp = pytest.importorskip("scipy.sparse")
    dense = (0.5 * sp.random(6, 6, density=0.4, random_state=0)).toarray()
    W = getattr(sp, f"{fmt}_{kind}")(dense)
    x = np.random.default_rng(0).standard_normal(6)
    traj = itermap.iterate(itermap.IterativeMap(W), x, 5)
    for _ in range(5):  # a plain loop
        x = np.tanh(dense @ x)
    np.testing.assert_allclose(traj.final, x, rtol=0, atol=1e-15)


def test_a_sparse_weight_pattern_with_explicit_zeros_is_left_as_given():
    # the map drops explicit zeros from its own copy; before it dropped them from the caller's
    # matrix (a pattern of allowed connections, a trainable mask)
    sp = pytest.importorskip("scipy.sparse")
    W = sp.csr_matrix((np.array([0.5, 0.0, 0.3]), (np.array([0, 1, 2]), np.array([1, 2, 0]))),
                      shape=(3, 3))
    B = sp.csr_array((np.array([0.5, 0.0]), (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    m = itermap.IterativeMap(W)
    itermap.BlockMatrix([2], {(0, 0): B})
    assert W.nnz == 3 and B.nnz == 2
    assert m.weights.nnz == 2  # the map's own: without the zero
    np.testing.assert_allclose(m.step(np.ones(3)), np.tanh(W.toarray() @ np.ones(3)), atol=0)


def _square_function(out_cols=None, tangent_cols=None):
    from itermap.block_functions import BlockFunction

    class Square(BlockFunction):
        """A user's own block function g(x) = 0.3 x^2, optionally returning too few columns."""

        name = "square"
        in_size = out_size = 3

        def __call__(self, x):
            return (0.3 * x ** 2)[..., :out_cols]

        def tangent_rows(self, x, V):
            return (0.6 * x[..., None, :] * V)[..., :tangent_cols]

        def vjp_rows(self, x, G):
            return 0.6 * x[..., None, :] * G

    return Square()


def test_a_block_function_of_the_wrong_output_shape_is_named_not_broadcast():
    rng = np.random.default_rng(0)
    W = 0.4 * rng.standard_normal((5, 5))
    x = 0.5 * rng.standard_normal(5)
    good = itermap.IterativeMap(W, sizes=[2, 3], activation=["tanh", "relu"],
                                functions={(1, 1): _square_function()})
    z = W @ x
    z[2:] += 0.3 * x[2:] ** 2  # the plain formula
    np.testing.assert_allclose(good.step(x), np.concatenate([np.tanh(z[:2]),
                                                             np.maximum(z[2:], 0)]), atol=1e-15)
    # before: g's one column broadcast over the block's three, a silently wrong step
    bad = itermap.IterativeMap(W, sizes=[2, 3], activation=["tanh", "relu"],
                               functions={(1, 1): _square_function(out_cols=1)})
    for call in (lambda: bad.step(x), lambda: itermap.iterate(bad, x, 3),
                 lambda: bad.step(np.tile(x, (4, 1)))):
        with pytest.raises(ValueError, match=r"functions\[\(1, 1\)\] \(Square\): its __call__ "
                                             r"returned shape \((4, )?1,?\), expected "
                                             r"\((4, )?3,?\)"):
            call()
    bad_tangent = itermap.IterativeMap(W, sizes=[2, 3], activation=["tanh", "relu"],
                                       functions={(1, 1): _square_function(tangent_cols=1)})
    with pytest.raises(ValueError, match=r"functions\[\(1, 1\)\] \(Square\): its tangent"):
        A.lyapunov_spectrum(bad_tangent, x, 10, rng=0)


def test_a_nested_sequential_is_told_to_unnest():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    inner = nn.Sequential(nn.Linear(4, 6), nn.Tanh()).double()
    outer = nn.Sequential(inner, nn.Linear(6, 3)).double()
    with pytest.raises(ValueError, match=r"model\[0\] is a Sequential.*unnest it: its layers go "
                                         r"into the outer nn\.Sequential \(\*model\[0\] for "
                                         r"model\[0\]\)"):
        itermap.from_torch(outer)
    m = itermap.from_torch(nn.Sequential(*outer[0], *outer[1:]))   # what the message says
    x = np.random.default_rng(0).standard_normal((3, 4))
    with torch.no_grad():
        ref = outer(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(m.forward(x), ref, rtol=0, atol=1e-14)
