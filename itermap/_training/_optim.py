"""Optimizers on one flat parameter vector: Adam and SGD with momentum.

They follow ``torch.optim.Adam`` and ``torch.optim.SGD`` step for step (weight
decay is the L2 term added to the gradient, as there), so a training run can be
checked against torch. Their state is a dict of arrays and numbers, saved with
a training state so that a run resumes exactly.
"""

from __future__ import annotations

from .._core._backend import namespace

__all__ = ["Adam", "SGD", "make_optimizer"]


class _Optimizer:
    """L2 weight decay, the step count, masked in-place updates and the saved state."""

    def __init__(self, lr, weight_decay):
        self.lr = lr
        self.weight_decay = float(weight_decay)
        self.count = 0
        self.m = self.v = None

    def step(self, theta, grad, *, lr, mask=None):
        """Update ``theta`` in place from ``grad``; ``mask`` (0/1) freezes entries."""
        if self.weight_decay:
            grad = grad + self.weight_decay * theta
        self.count += 1
        update = self._update(theta, grad, lr, namespace(theta))
        if mask is not None:
            update = update * mask
        theta -= update

    def state(self) -> dict:
        return {"count": self.count, "m": self.m, "v": self.v}

    def load_state(self, state: dict) -> None:
        self.count = int(state["count"])
        self.m, self.v = state["m"], state["v"]


class Adam(_Optimizer):
    """Adam (Kingma and Ba 2015) with torch's bias correction and L2 weight decay.

    Examples
    --------
    >>> from itermap._training._optim import Adam
    >>> opt = Adam(0.1)
    >>> theta = np.array([1.0])
    >>> opt.step(theta, np.array([2.0]), lr=0.1)   # the first step moves by lr
    >>> theta
    array([0.9])
    """

    name = "adam"

    def __init__(self, lr, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.eps = float(eps)

    def _update(self, theta, grad, lr, xp):
        if self.m is None:
            self.m, self.v = xp.zeros_like(theta), xp.zeros_like(theta)
        self.m *= self.beta1
        self.m += (1.0 - self.beta1) * grad
        self.v *= self.beta2
        self.v += (1.0 - self.beta2) * grad * grad
        c1 = 1.0 - self.beta1 ** self.count
        c2 = 1.0 - self.beta2 ** self.count
        return (lr / c1) * self.m / (xp.sqrt(self.v / c2) + self.eps)


class SGD(_Optimizer):
    """Stochastic gradient descent with (optionally Nesterov) momentum, as in torch.

    Examples
    --------
    >>> from itermap._training._optim import SGD
    >>> opt = SGD(0.5, momentum=0.9)
    >>> theta = np.array([1.0])
    >>> opt.step(theta, np.array([1.0]), lr=0.5); opt.step(theta, np.array([1.0]), lr=0.5)
    >>> theta   # 1 - 0.5 - 0.5 * 1.9
    array([-0.45])
    """

    name = "sgd"

    def __init__(self, lr, *, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.nesterov = bool(nesterov)

    def _update(self, theta, grad, lr, xp):
        if self.momentum:
            if self.m is None:
                self.m = xp.asarray(grad, copy=True)
            else:
                self.m *= self.momentum
                self.m += grad
            grad = grad + self.momentum * self.m if self.nesterov else self.m
        return lr * grad


def make_optimizer(name, lr, *, weight_decay=0.0, momentum=0.9, betas=(0.9, 0.999)):
    """``"adam"`` or ``"sgd"`` by name."""
    if name == "adam":
        return Adam(lr, betas=betas, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")
