"""Plain gradient descent, written as the notebooks write it: ``p -= lr * p.grad``."""

import torch


class GradientDescent(torch.optim.Optimizer):
    """theta <- theta - lr * dL/dtheta, one in-place update per parameter in the notebooks'
    own arithmetic (no fused or foreach kernel), so a seeded notebook's numbers come out bit
    for bit on every CPU."""

    def __init__(self, params, lr: float):
        if not lr > 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * p.grad
        return loss
