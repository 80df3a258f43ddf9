"""Dense BFGS with a strong-Wolfe line search; one ``step(closure)`` is one iteration.

Notebook 004 trains with ``scipy.optimize.minimize(method="BFGS")``. torch ships only
L-BFGS, whose short history and rescaled start stop short of the sharp, overfitting minima
that full BFGS reaches for wide networks (the notebook's width sweep), so this follows
scipy: H_0 = I, the same first trial step, gtol on the largest gradient entry, and at most
200 * n iterations by default. ``round_float32`` evaluates the loss at the point rounded to
float32, as notebook 004's helper does (its model holds float32 parameters while scipy keeps x
in float64): the search then loses precision and stops thousands of iterations earlier, at
the minima the notebook reports.

``iterations`` counts the steps that ran (one Lightning step each). Gradient below gtol and
max_iter are checked right after an update, as scipy does, so ``converged`` turns true at the
step that made the last update; a run that ends because the line search finds no decrease
(scipy: "precision loss") spends one more step on that search, which moves nothing, and counts
it: there ``iterations`` is scipy's ``nit`` + 1.
"""

import torch

from gradlab.optim.line_search import strong_wolfe


class BFGS(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1.0,
        max_iter: int | None = None,
        gtol: float = 1e-5,
        tolerance_change: float = 1e-12,
        max_ls: int = 25,
        round_float32: bool = False,
    ):
        if not lr > 0:
            raise ValueError(f"lr: must be positive, got {lr}")
        if max_iter is not None and max_iter < 1:
            raise ValueError(f"max_iter: must be >= 1, got {max_iter}")
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            gtol=gtol,
            tolerance_change=tolerance_change,
            max_ls=max_ls,
            round_float32=bool(round_float32),
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("BFGS does not support per-parameter options (one param group)")

    @property
    def params(self) -> list[torch.Tensor]:
        return self.param_groups[0]["params"]

    @property
    def converged(self) -> bool:
        return bool(self.state[self.params[0]].get("converged", False))

    @property
    def iterations(self) -> int:
        return int(self.state[self.params[0]].get("n_iter", 0))

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
                for p in self.params
            ]
        ).to(torch.float64)

    def _set(self, x: torch.Tensor) -> None:
        if self.param_groups[0]["round_float32"]:
            x = x.to(torch.float32).to(x.dtype)
        i = 0
        for p in self.params:
            p.copy_(x[i : i + p.numel()].view_as(p).to(p.dtype))
            i += p.numel()

    @torch.no_grad()
    def step(self, closure):
        """One BFGS iteration from the current parameters; returns the loss before it."""
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        state = self.state[self.params[0]]

        def evaluate(x):
            self._set(x)
            loss = float(closure().detach())
            state["func_evals"] += 1
            return loss, self._flat_grad()

        if "H" not in state:  # first iteration: start from H_0 = I
            x = torch.cat([p.detach().reshape(-1) for p in self.params]).to(torch.float64)
            state.update(n_iter=0, func_evals=0, converged=False, x=x)
            state["f"], state["g"] = evaluate(x)
            # scipy's guess for the previous value: the first trial step is ~ 1/|g|
            state["old_f"] = state["f"] + state["g"].norm().item() / 2
            state["H"] = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
        elif state["converged"]:
            return state["f"]
        state["n_iter"] += 1
        x, f, g, H = state["x"], state["f"], state["g"], state["H"]
        if g.abs().max() <= group["gtol"]:  # the starting point already meets gtol
            return self._stop(state, x, f)
        d = -(H @ g)
        gtd = g.dot(d).item()
        if gtd > -group["tolerance_change"]:  # no descent direction left
            return self._stop(state, x, f)
        t = min(1.0, 1.01 * 2 * (f - state["old_f"]) / gtd) * group["lr"]
        f_new, g_new, t, _ = strong_wolfe(
            lambda t: evaluate(x + t * d),
            t,
            d,
            f,
            g,
            gtd,
            max_ls=group["max_ls"],
            tolerance_change=group["tolerance_change"],
        )
        if not f_new < f:  # the line search found no decrease: precision is exhausted
            return self._stop(state, x, f)
        s = t * d
        y = g_new - g
        sy = s.dot(y)
        if sy > 0:  # H+ = (I - s y'/s'y) H (I - y s'/s'y) + s s'/s'y
            Hy = H @ y
            H += (sy + y.dot(Hy)) / sy**2 * torch.outer(s, s)
            H -= (torch.outer(Hy, s) + torch.outer(s, Hy)) / sy
        state.update(x=x + s, old_f=f, f=f_new, g=g_new)
        self._set(state["x"])
        if self._done(g_new):  # checked here, as scipy does: no step is spent on it
            state["converged"] = True
        return f

    def _done(self, g: torch.Tensor) -> bool:
        """Gradient below gtol, or max_iter (default 200 x #params) iterations spent."""
        group, state = self.param_groups[0], self.state[self.params[0]]
        max_iter = group["max_iter"] or 200 * state["x"].numel()
        return g.abs().max() <= group["gtol"] or state["n_iter"] >= max_iter

    def _stop(self, state: dict, x: torch.Tensor, f: float) -> float:
        state["converged"] = True
        self._set(x)
        return f
