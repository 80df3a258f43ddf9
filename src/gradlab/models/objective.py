"""Minimizing a function of the parameters alone, with no data (notebook 003)."""

import torch
from torch import nn


class Quadratic(nn.Module):
    """f(x) = a x^2 + b x + c of one parameter x from x0 (notebook 003: x^2 + 2x + 1, x0 = 5)."""

    def __init__(
        self,
        x0: float = 5.0,
        a: float = 1.0,
        b: float = 2.0,
        c: float = 1.0,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if restarts not in (None, 1):
            raise ValueError(
                "restarts: Quadratic starts from a fixed x0; restarts would be identical"
            )
        self.restarts = None
        self.coefficients = (a, b, c)
        self.x = nn.Parameter(torch.tensor(float(x0)))

    def forward(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        a, b, c = self.coefficients
        x = self.x
        y = x**2 + b * x + c if a == 1 else a * x**2 + b * x + c
        return y.reshape(1, 1)

    def manual_backward(self, grad_output: torch.Tensor, input_grad: bool = True) -> None:
        a, b, _ = self.coefficients
        self.x.grad = grad_output.sum() * (2 * a * self.x + b)  # f'(x) = 2ax + b
        return None

    def describe(self, restart: int | None = None) -> str:
        a, b, c = self.coefficients
        return f"f(x) = {a:g} x^2 + {b:g} x + {c:g}:  x = {float(self.x.detach()):.8g}"
