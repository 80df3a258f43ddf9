"""Polynomial regression y = sum_k a_k x^k (notebook 002), with hand-derived gradients."""

from types import SimpleNamespace

import torch
from torch import nn

from gradlab.models.init import check_restarts, set_initial_values
from gradlab.models.mlp import MLP, matmul_per_run

NAMES = "abcdefghijklmnopqrstuvwxyz"


def _term(k: int) -> str:
    return "" if k == 0 else (" x" if k == 1 else f" x^{k}")


class Polynomial(nn.Module):
    """y = a_0 + a_1 x + ... + a_K x^K with standard-normal initial coefficients."""

    def __init__(
        self,
        degree: int = 3,
        init_values: dict | None = None,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
            raise ValueError(f"degree: must be a non-negative integer, got {degree!r}")
        self.degree = degree
        self.restarts = check_restarts(restarts)
        shape = (self.restarts, degree + 1) if self.restarts else (degree + 1,)
        self.coeffs = nn.Parameter(torch.randn(shape, generator=generator))
        self.register_buffer("powers", torch.arange(degree + 1), persistent=False)
        set_initial_values(self, init_values)
        self.cache = SimpleNamespace(x=None, features=None)
        self.matmul = torch.matmul  # matmul_per_run: batched runs that round as solo runs

    def round_as_solo_runs(self, each: bool = True) -> None:
        """Each run's products computed on its own slice, as in ``MLP.round_as_solo_runs``."""
        self.matmul = matmul_per_run if each else torch.matmul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.linalg.vander(x[..., 0], N=self.degree + 1)  # (N, K+1): 1, x, x^2, ...
        self.cache.x, self.cache.features = x, features
        return self.matmul(features, self.coeffs.unsqueeze(-1))  # (N, 1) or (R, N, 1)

    def manual_backward(self, grad_output: torch.Tensor, input_grad: bool = True):
        x, features = self.cache.x, self.cache.features
        # dL/da_k = sum_n g_n x_n^k
        self.coeffs.grad = self.matmul(features.mT, grad_output).squeeze(-1)
        if not input_grad:
            return None
        k = self.powers[1:]
        dy_dx = (x ** (k - 1) * k) @ self.coeffs[..., 1:].unsqueeze(-1)  # sum_k k a_k x^(k-1)
        return grad_output * dy_dx

    def describe(self, restart: int | None = None) -> str:
        c = self.coeffs.detach()
        if c.dim() > 1:
            c = c[restart or 0]
        terms = " + ".join(f"{float(v):.6g}{_term(k)}" for k, v in enumerate(c))
        names = " + ".join(f"{NAMES[k]}{_term(k)}" for k in range(self.degree + 1))
        return f"y = {names}:  y = {terms}"


class PolynomialLinear(nn.Module):
    """The same polynomial as ``nn.Linear(K, 1)`` on features [x, x^2, ..., x^K] (notebook 002)."""

    def __init__(
        self,
        degree: int = 3,
        init: str = "uniform",
        init_values: dict | None = None,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree: must be a positive integer, got {degree!r}")
        self.degree = degree
        self.restarts = check_restarts(restarts)
        self.linear = MLP(
            [degree, 1], "identity", init=init, restarts=restarts, generator=generator
        )
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)
        set_initial_values(self, init_values)
        self.cache = SimpleNamespace(x=None)

    def round_as_solo_runs(self, each: bool = True) -> None:
        """Each run's products computed on its own slice (its layer's)."""
        self.linear.round_as_solo_runs(each)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.cache.x = x
        return self.linear(x**self.powers)

    def manual_backward(self, grad_output: torch.Tensor, input_grad: bool = True):
        grad_features = self.linear.manual_backward(grad_output, input_grad)  # dL/d(x^k)
        if not input_grad:
            return None
        k = self.powers
        return (grad_features * k * self.cache.x ** (k - 1)).sum(-1, keepdim=True)  # d(x^k)/dx

    def describe(self, restart: int | None = None) -> str:
        w = self.linear.weight_of(0).detach()
        b = self.linear.bias_of(0).detach()
        if w.dim() == 3:
            w, b = w[restart or 0], b[restart or 0]
        terms = [f"{float(b[0]):.6g}"] + [
            f"{float(w[k - 1, 0]):.6g}{_term(k)}" for k in range(1, self.degree + 1)
        ]
        return "y = " + " + ".join(terms)
