"""Dense BFGS with a strong-Wolfe line search; one ``step(closure)`` minimizes to convergence.

Notebook 004 trains with ``scipy.optimize.minimize(method="BFGS")``. torch ships only
L-BFGS, whose short history and rescaled start stop short of the sharp, overfitting minima
that full BFGS reaches for wide networks (the notebook's width sweep), so this follows
scipy: H_0 = I, the same first trial step, gtol on the largest gradient entry, and at most
200 * n iterations by default.
"""

import torch
from torch.optim.lbfgs import _strong_wolfe


class BFGS(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1.0,
        max_iter: int | None = None,
        gtol: float = 1e-5,
        tolerance_change: float = 1e-12,
        max_ls: int = 25,
    ):
        if not lr > 0:
            raise ValueError(f"lr: must be positive, got {lr}")
        if max_iter is not None and max_iter < 1:
            raise ValueError(f"max_iter: must be >= 1, got {max_iter}")
        defaults = dict(
            lr=lr, max_iter=max_iter, gtol=gtol, tolerance_change=tolerance_change, max_ls=max_ls
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("BFGS does not support per-parameter options (one param group)")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
                for p in self._params
            ]
        ).to(torch.float64)

    def _set(self, x: torch.Tensor) -> None:
        i = 0
        for p in self._params:
            p.copy_(x[i : i + p.numel()].view_as(p).to(p.dtype))
            i += p.numel()

    @torch.no_grad()
    def step(self, closure):
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        state.setdefault("func_evals", 0)

        def evaluate(x):
            self._set(x)
            loss = float(closure())
            state["func_evals"] += 1
            return loss, self._flat_grad()

        def along(x, t, d):
            return evaluate(x + t * d)

        x = torch.cat([p.detach().reshape(-1) for p in self._params]).to(torch.float64)
        n = x.numel()
        max_iter = group["max_iter"] or 200 * n
        f, g = evaluate(x)
        first = f
        old_f = f + g.norm().item() / 2  # scipy's guess for the previous value: first step ~1/|g|
        H = torch.eye(n, dtype=x.dtype, device=x.device)
        for _ in range(max_iter):
            if g.abs().max() <= group["gtol"]:
                break
            d = -(H @ g)
            gtd = g.dot(d)
            if gtd > -group["tolerance_change"]:  # not a descent direction any more
                break
            t = min(1.0, 1.01 * 2 * (f - old_f) / gtd.item()) * group["lr"]
            f_new, g_new, t, _ = _strong_wolfe(
                along,
                x,
                t,
                d,
                f,
                g,
                gtd,
                max_ls=group["max_ls"],
                tolerance_change=group["tolerance_change"],
            )
            if not f_new < f:  # the line search found no decrease: precision is exhausted
                break
            s = t * d
            y = g_new - g
            x = x + s
            old_f, f, g = f, f_new, g_new
            state["n_iter"] += 1
            sy = s.dot(y)
            if sy > 0:  # H+ = (I - s y'/s'y) H (I - y s'/s'y) + s s'/s'y
                Hy = H @ y
                H += (sy + y.dot(Hy)) / sy**2 * torch.outer(s, s)
                H -= (torch.outer(Hy, s) + torch.outer(s, Hy)) / sy
        self._set(x)
        closure()  # leave the gradients of the final point in .grad
        state["func_evals"] += 1
        return first
