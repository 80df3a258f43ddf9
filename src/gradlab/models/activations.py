"""Activation functions with their hand-derived backward passes.

Each activation maps pre-activations z to outputs a = phi(z); ``backward`` turns
dL/da into dL/dz using whichever of z or a gives the simplest formula.
"""

import torch


class Activation:
    name = "activation"

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, grad_a: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class Identity(Activation):
    name = "identity"

    def __call__(self, z):
        return z

    def backward(self, grad_a, z, a):
        return grad_a  # phi'(z) = 1


class Tanh(Activation):
    name = "tanh"

    def __call__(self, z):
        return torch.tanh(z)

    def backward(self, grad_a, z, a):
        return grad_a * (1 - a * a)  # tanh'(z) = 1 - tanh(z)^2


class Sigmoid(Activation):
    name = "sigmoid"

    def __call__(self, z):
        return torch.sigmoid(z)

    def backward(self, grad_a, z, a):
        return grad_a * a * (1 - a)  # sigma'(z) = sigma(z) (1 - sigma(z))


class ReLU(Activation):
    name = "relu"

    def __call__(self, z):
        return torch.relu(z)

    def backward(self, grad_a, z, a):
        return grad_a * (z > 0)  # relu'(z) = 1[z > 0]


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def __call__(self, z):
        return torch.nn.functional.leaky_relu(z, self.slope)

    def backward(self, grad_a, z, a):
        return torch.where(z > 0, grad_a, self.slope * grad_a)  # 1 or slope


class LogSoftmax(Activation):
    """Row-wise log-softmax, the output of (multinomial) logistic regression."""

    name = "log_softmax"

    def __call__(self, z):
        return torch.log_softmax(z, dim=-1)

    def backward(self, grad_a, z, a):
        # a_i = z_i - log sum_j exp z_j  =>  dL/dz = g - softmax(z) * sum_i g_i
        return grad_a - a.exp() * grad_a.sum(-1, keepdim=True)


class EachRun(Activation):
    """An activation applied to each run's slice of a leading run dimension on its own, its
    backward too: an elementwise kernel computes a tensor's last few values by a scalar path
    (torch.sigmoid's is an ulp apart from its vector path), so a run's values round as its
    solo run's only in a tensor of its own (a batched group that must equal its runs)."""

    def __init__(self, phi: Activation):
        self.phi, self.name = phi, phi.name

    def __call__(self, z):
        return torch.stack([self.phi(zr) for zr in z.unbind(0)])

    def backward(self, grad_a, z, a):
        runs = zip(grad_a.unbind(0), z.unbind(0), a.unbind(0), strict=True)
        return torch.stack([self.phi.backward(*run) for run in runs])


ACTIVATIONS = {
    "identity": Identity,
    "linear": Identity,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "log_softmax": LogSoftmax,
}
DYING = ("relu", "leaky_relu")
SATURATING = ("tanh", "sigmoid")


def register(cls: type[Activation]) -> type[Activation]:
    """Make an Activation subclass available by its ``name`` (``model.activation=NAME``),
    from your own code, without editing gradlab; usable as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Activation)) or cls.name in ACTIVATIONS:
        raise ValueError(f"activation: cannot register {cls!r} (an Activation with a new name)")
    ACTIVATIONS[cls.name] = cls
    return cls


def get_activation(name: str, key: str = "activation") -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(f"{key}: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
