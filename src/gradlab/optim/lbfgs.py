"""torch's L-BFGS, one iteration per ``step(closure)``, with its stopping rules kept across steps.

``max_iter`` and ``max_eval`` are budgets for the whole minimization (torch applies them to
one call); ``converged`` turns true at the step that finds a stopping rule met (that step
evaluates the loss and leaves the parameters as they are).
"""

import torch


class LBFGS(torch.optim.LBFGS):
    def __init__(
        self,
        params,
        lr: float = 1.0,
        max_iter: int = 2000,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        if max_iter < 1:
            raise ValueError(f"max_iter: must be >= 1, got {max_iter}")
        super().__init__(
            params,
            lr=lr,
            max_iter=1,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self.budget = (max_iter, max_eval if max_eval is not None else max_iter * 5 // 4)
        self.converged = False
        self.stop_next = False  # a stopping rule met after the last iteration
        self.last_loss: float | None = None

    @property
    def iterations(self) -> int:
        return int(self.state[self.param_groups[0]["params"][0]].get("n_iter", 0))

    def step(self, closure):
        """One L-BFGS iteration; returns the loss before it."""
        if self.converged:
            return self.last_loss
        state = self.state[self.param_groups[0]["params"][0]]
        tol = self.param_groups[0]["tolerance_change"]
        if self.stop_next or self.iterations >= self.budget[0]:
            with torch.enable_grad():
                loss = float(closure())
            self.converged, self.last_loss = True, loss
            return loss
        before = self.iterations
        loss = float(super().step(closure))
        if self.iterations == before:  # the gradient met tolerance_grad: no step was taken
            self.converged = True
        else:
            t, d = state.get("t"), state.get("d")
            small = d is not None and float((d * t).abs().max()) <= tol
            flat = self.last_loss is not None and abs(loss - self.last_loss) < tol
            evals = state.get("func_evals", 0) >= self.budget[1]
            self.stop_next = small or flat or evals
        self.last_loss = loss
        return loss

    def state_dict(self):
        out = super().state_dict()
        out["gradlab"] = {
            "converged": self.converged,
            "stop_next": self.stop_next,
            "last_loss": self.last_loss,
        }
        return out

    def load_state_dict(self, state_dict):
        extra = state_dict.get("gradlab", {})
        self.converged = extra.get("converged", False)
        self.stop_next = extra.get("stop_next", False)
        self.last_loss = extra.get("last_loss")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "gradlab"})
