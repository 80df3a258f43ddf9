"""torch's L-BFGS, one iteration per ``step(closure)``, with its stopping rules kept across steps.

``max_iter`` and ``max_eval`` are budgets for the whole minimization (torch applies them to
one call). torch checks most of its stopping rules at the start of an iteration, after
evaluating the loss, so ``converged`` turns true at the step that finds a rule met; that step
evaluates the loss and moves nothing. ``iterations`` counts the steps that ran (one Lightning
step each), that last one included: torch's ``n_iter`` + 1 when a run ends that way.
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
        self.last_loss: float | None = None
        self.iterations = 0  # steps run, the one that finds a stopping rule met included

    def torch_iterations(self) -> int:
        """torch's own count: the iterations that moved the parameters."""
        return int(self.state[self.param_groups[0]["params"][0]].get("n_iter", 0))

    def step(self, closure):
        """One L-BFGS iteration; returns the loss before it."""
        if self.converged:
            return self.last_loss
        self.iterations += 1
        state = self.state[self.param_groups[0]["params"][0]]
        tol = self.param_groups[0]["tolerance_change"]
        with torch.enable_grad():
            loss = float(closure().detach())  # at the current point; its gradient in .grad
        self.last_loss = loss
        # torch's stopping rules, checked where one long call would check them (after the
        # previous iteration): budgets spent, no progress in the step or in the loss
        # evaluations one long torch call would have made, less one (ours re-evaluate each start)
        evals = state.get("func_evals", 0) - self.torch_iterations()
        spent = evals + 1 >= self.budget[1]
        d, t = state.get("d"), state.get("t")
        small = d is not None and float((d * t).abs().max()) <= tol
        flat = "prev_loss" in state and abs(loss - state["prev_loss"]) < tol
        if self.torch_iterations() >= self.budget[0] or spent or small or flat:
            self.converged = True
            return loss
        # torch bounds one call's line search by max_eval less the evaluations so far; each of
        # our calls evaluates its start once more than one long call would
        self.param_groups[0]["max_eval"] = max(self.budget[1] - evals, 2)
        fresh = [True]

        def start_then_closure():  # the start was just evaluated: hand torch that value
            if fresh[0]:
                fresh[0] = False
                return torch.tensor(loss, dtype=torch.float64)
            return closure()

        before = self.torch_iterations()
        super().step(start_then_closure)
        if self.torch_iterations() == before:  # the gradient met tolerance_grad: no step was taken
            self.converged = True
        return loss

    def state_dict(self):
        out = super().state_dict()
        out["gradlab"] = {
            "converged": self.converged,
            "last_loss": self.last_loss,
            "iterations": self.iterations,
        }
        return out

    def load_state_dict(self, state_dict):
        extra = state_dict.get("gradlab", {})
        self.converged = extra.get("converged", False)
        self.last_loss = extra.get("last_loss")
        self.iterations = extra.get("iterations", 0)
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "gradlab"})
