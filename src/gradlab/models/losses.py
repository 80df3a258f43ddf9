"""Losses with their hand-derived gradients with respect to the prediction.

Every loss reduces over the last two dimensions (samples, outputs), so a
prediction with a leading restart dimension gives one loss per restart.
"""

import torch


class Loss:
    name = "loss"
    reduction = "mean"  # how a data-parallel split must combine gradients: mean or sum

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """dL/dpred, same shape as ``pred``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


def _count(pred: torch.Tensor) -> int:
    return pred.shape[-2] * pred.shape[-1]


class MeanSquaredError(Loss):
    name = "mse"

    def __call__(self, pred, target):
        return ((pred - target) ** 2).mean(dim=(-2, -1))

    def grad(self, pred, target):
        return (2.0 / _count(pred)) * (pred - target)  # d/dp mean (p - y)^2


class SumOfSquares(Loss):
    name = "sse"
    reduction = "sum"

    def __call__(self, pred, target):
        return ((pred - target) ** 2).sum(dim=(-2, -1))

    def grad(self, pred, target):
        return 2.0 * (pred - target)  # d/dp sum (p - y)^2


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy on probabilities (a sigmoid output)."""

    name = "bce"

    def __call__(self, pred, target):
        p = pred.clamp(1e-12, 1 - 1e-12)
        return -(target * p.log() + (1 - target) * (1 - p).log()).mean(dim=(-2, -1))

    def grad(self, pred, target):
        p = pred.clamp(1e-12, 1 - 1e-12)
        return (p - target) / (p * (1 - p) * _count(pred))  # d/dp -[y log p + (1-y) log(1-p)]


class NegativeLogLikelihood(Loss):
    """Mean cross-entropy on log-probabilities (a log-softmax output); targets are class ids."""

    name = "nll"

    def _onehot(self, pred, target):
        return torch.nn.functional.one_hot(target.long(), pred.shape[-1]).to(pred.dtype)

    def __call__(self, pred, target):
        return -(pred * self._onehot(pred, target)).sum(-1).mean(-1)

    def grad(self, pred, target):
        return -self._onehot(pred, target) / pred.shape[-2]  # d/dlogp_ic -mean_i logp_{i,y_i}


class Value(Loss):
    """The model's output is itself the objective (minimizing a function of parameters)."""

    name = "value"
    reduction = "sum"

    def __call__(self, pred, target):
        return pred

    def grad(self, pred, target):
        return torch.ones_like(pred)


LOSSES = {
    "mse": MeanSquaredError,
    "sse": SumOfSquares,
    "bce": BinaryCrossEntropy,
    "nll": NegativeLogLikelihood,
    "cross_entropy": NegativeLogLikelihood,
    "value": Value,
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"loss.name: unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]()
