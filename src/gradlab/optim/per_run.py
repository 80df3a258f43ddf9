"""Per-run learning rates for any torch optimizer, on parameters with a leading run dimension."""

import torch


class PerRunLearningRates(torch.optim.Optimizer):
    """Run ``optimizer`` with learning rate 1, then scale each run's parameter change by that
    run's rate: theta_r <- theta_r + lr_r * (step_1(theta)_r - theta_r).

    Exact in exact arithmetic for every optimizer whose update is linear in the learning rate
    (SGD with momentum, Nesterov and weight decay, Adam, AdamW, RMSprop, Adagrad: the rate
    multiplies the whole step); in floating point it agrees with a run of its own to rounding.
    Schedulers scale the inner rate, so lr_r times the schedule is applied."""

    def __init__(self, params, optimizer, lrs):
        params = list(params)
        self.inner = optimizer(params, lr=1.0)
        super().__init__(params, {"lr": 1.0})
        self.param_groups = self.inner.param_groups  # schedulers and monitors see the inner
        self.state = self.inner.state
        self.lrs = torch.as_tensor(lrs, dtype=torch.float64)

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"]]
        before = [p.detach().clone() for p in params]
        loss = self.inner.step(closure)
        with torch.no_grad():
            for p, p0 in zip(params, before, strict=True):
                lr = self.lrs.to(p.device, p.dtype).reshape(-1, *[1] * (p.dim() - 1))
                p.copy_(p0 + lr * (p - p0))
        return loss

    def state_dict(self):
        return {"inner": self.inner.state_dict(), "lrs": self.lrs}

    def load_state_dict(self, state_dict):
        self.inner.load_state_dict(state_dict["inner"])
        self.lrs = state_dict["lrs"]


class RunByRun(torch.optim.Optimizer):
    """Each run steps exactly as its own optimizer would: the optimizer's parameters are the
    runs' slices of every parameter (views into it), one param group per run with that run's
    rate, so run r's update goes through the same kernel on a tensor of the same size as in a
    run of its own, and rounds alike (bit-identical). One kernel call per run and step: for
    thousands of runs ``PerRunLearningRates`` is faster."""

    def __init__(self, params, optimizer, lrs):
        self.params = list(params)
        self.runs = [[p.detach()[r] for p in self.params] for r in range(len(lrs))]
        groups = [{"params": views, "lr": lr} for views, lr in zip(self.runs, lrs, strict=True)]
        self.inner = optimizer(groups)
        super().__init__(self.params, {"lr": float(lrs[0])})
        self.param_groups = self.inner.param_groups  # schedulers and monitors see the runs'
        self.state = self.inner.state

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for r, views in enumerate(self.runs):
            for p, view in zip(self.params, views, strict=True):
                view.grad = None if p.grad is None else p.grad[r]
        self.inner.step()
        return loss

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None
        self.inner.zero_grad(set_to_none)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state_dict):
        self.inner.load_state_dict(state_dict)
