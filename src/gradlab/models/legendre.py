"""y = a + b * P3(c + d x) with P3 the Legendre polynomial of degree 3 (notebook 002)."""

from types import SimpleNamespace

import torch
from torch import nn

from gradlab.models.init import set_initial_values


class LegendreP3(torch.autograd.Function):
    """P3(u) = (5u^3 - 3u) / 2 as a custom autograd Function with its own backward."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return 0.5 * (5 * u**3 - 3 * u)

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * u**2 - 1)  # P3'(u) = 3/2 (5u^2 - 1)


class LegendreModel(nn.Module):
    """Four scalar parameters; deterministic init a=0, b=-1, c=0, d=0.3 as in the notebook."""

    def __init__(
        self,
        a: float = 0.0,
        b: float = -1.0,
        c: float = 0.0,
        d: float = 0.3,
        init_values: dict | None = None,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if restarts not in (None, 1):
            raise ValueError(
                "restarts: LegendreModel has a fixed initialization; restarts would be identical"
            )
        self.restarts = None
        for name, v in dict(a=a, b=b, c=c, d=d).items():
            setattr(self, name, nn.Parameter(torch.tensor(float(v))))
        set_initial_values(self, init_values)
        self.cache = SimpleNamespace(x=None, u=None, p=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.c + self.d * x
        p = LegendreP3.apply(u)
        self.cache.x, self.cache.u, self.cache.p = x, u, p
        return self.a + self.b * p

    def manual_backward(self, grad_output: torch.Tensor, input_grad: bool = True):
        x, u, p = self.cache.x, self.cache.u, self.cache.p
        g = grad_output
        self.a.grad = g.sum()  # dy/da = 1
        self.b.grad = (g * p).sum()  # dy/db = P3(u)
        g_u = g * self.b * 1.5 * (5 * u**2 - 1)  # dy/du = b P3'(u)
        self.c.grad = g_u.sum()  # du/dc = 1
        self.d.grad = (g_u * x).sum()  # du/dd = x
        return g_u * self.d if input_grad else None  # du/dx = d

    def describe(self, restart: int | None = None) -> str:
        a, b, c, d = (float(p.detach()) for p in (self.a, self.b, self.c, self.d))
        return f"y = a + b * P3(c + d x):  y = {a:.6g} + {b:.6g} * P3({c:.6g} + {d:.6g} x)"
