"""Per-run learning rates for any torch optimizer, on parameters with a leading run dimension."""

import copy

import torch

# options that torch's optimizers take per param group: a group's runs may differ in them
GROUP_OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "betas", "eps", "alpha")


def group_options(cfg) -> dict:
    """The run's per-group optimizer options (those its optim config sets)."""
    return {
        k: tuple(v) if k == "betas" else v
        for k in GROUP_OPTIONS
        if (v := cfg.optim.get(k)) is not None
    }


def rates_step_run_by_run(scheduled: bool, lrs) -> bool:
    """Whether a group of runs at learning rates ``lrs`` steps run by run (``RunByRun``) even
    where rounding-level equality would do: a scheduler over ``PerRunLearningRates`` would
    schedule its inner rate 1, not each run's."""
    return scheduled and len({float(lr) for lr in lrs}) > 1


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
        self.param_groups, self.state = self.inner.param_groups, self.inner.state  # (new ones)
        self.lrs = state_dict["lrs"]


class RunByRun(torch.optim.Optimizer):
    """Each run steps exactly as its own optimizer would: the optimizer's parameters are the
    runs' slices of every parameter (views into it), one param group per set of per-run
    options (``options[r]``: lr, momentum, betas, ...), so run r's update goes through the same
    kernel on tensors of the same sizes as in a run of its own, and rounds alike
    (bit-identical). The runs' gradients are copied into buffers whose slices are the views'
    gradients (one copy per parameter and step)."""

    def __init__(self, params, optimizer, options: list[dict]):
        self.params = list(params)
        self.grads = [torch.zeros_like(p) for p in self.params]
        groups, self.slots = [], [None] * len(options)  # slots: run -> (group, place in it)
        for g, (key, runs) in enumerate(by_options(options)):
            views = []
            for place, r in enumerate(runs):
                self.slots[r] = (g, place)
                for p, grad in zip(self.params, self.grads, strict=True):
                    view = p.detach()[r]
                    view.grad = grad[r]
                    views.append(view)
            groups.append({"params": views, **dict(key)})
        self.inner = optimizer(groups)
        self.options = options
        super().__init__(self.params, dict(options[0]))
        self.param_groups = self.inner.param_groups  # schedulers and monitors see the runs'
        self.state = self.inner.state

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, grad in zip(self.params, self.grads, strict=True):
            if p.grad is None:
                grad.zero_()
            else:
                grad.copy_(p.grad)
        self.inner.step()
        return loss

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state_dict):
        self.inner.load_state_dict(state_dict)  # (it makes new param groups: a scheduler
        self.param_groups, self.state = self.inner.param_groups, self.inner.state  # sees them)

    def run_state_dict(self, run: int, packed: dict | None = None) -> dict:
        """Run ``run``'s optimizer state as its own optimizer's ``state_dict()`` holds it
        (parameters numbered 0..n-1, one group with the run's options), for its checkpoint:
        of now, or of ``packed`` (a ``state_dict()`` taken earlier)."""
        n, (g, j) = len(self.params), self.slots[run]
        group = self.inner.param_groups[g] if packed is None else packed["param_groups"][g]
        if packed is None:
            views = group["params"][j * n : (j + 1) * n]
            states = [self.inner.state.get(v) for v in views]
        else:  # state_dict() numbers the parameters group after group
            first = sum(len(h["params"]) for h in packed["param_groups"][:g]) + j * n
            states = [packed["state"].get(first + i) for i in range(n)]
        state = {
            i: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
            for i, s in enumerate(states)
            if s
        }
        options = {k: v for k, v in group.items() if k != "params"}  # (then: a scheduled rate)
        return {"state": state, "param_groups": [{**options, "params": list(range(n))}]}


def packed_state(optimizer: torch.optim.Optimizer) -> dict:
    """The group's optimizer state now (its live tensors: take the runs' before the next
    update), from which ``run_optimizer_state`` takes each run's."""
    inner = optimizer.inner if isinstance(optimizer, RunByRun | PerRunLearningRates) else optimizer
    return inner.state_dict()


def optimizer_snapshot(optimizer: torch.optim.Optimizer) -> dict:
    """A copy of the group's optimizer state now, from which ``run_optimizer_state`` takes a
    run's later (a run that diverges may keep the state of the start)."""
    return copy.deepcopy(packed_state(optimizer))


def run_optimizer_state(optimizer, run: int, runs: int, lr: float, packed=None) -> dict:
    """Run ``run``'s optimizer state as its own optimizer's ``state_dict()`` holds it, for its
    checkpoint: ``RunByRun`` keeps each run's own; an optimizer over the stacked parameters
    (``PerRunLearningRates``'s inner one, or one for runs of one rate) has each per-element
    state (momentum, moments) at the run's index, the scalar ones (the step count) shared."""
    if isinstance(optimizer, RunByRun):
        return optimizer.run_state_dict(run, packed)
    inner = optimizer.inner if isinstance(optimizer, PerRunLearningRates) else optimizer
    stacked = inner.state_dict() if packed is None else packed

    def mine(v):
        if not torch.is_tensor(v):
            return v
        return v[run].clone() if v.dim() > 0 and v.shape[0] == runs else v.clone()

    state = {i: {k: mine(v) for k, v in s.items()} for i, s in stacked["state"].items()}
    # one rate: the run's own, as set or as its scheduler set it (the inner optimizer of
    # per-run rates has rate 1: the run's is ``lr``)
    per_run = isinstance(optimizer, PerRunLearningRates)
    groups = [{**g, "lr": lr} if per_run else dict(g) for g in stacked["param_groups"]]
    return {"state": state, "param_groups": groups}


def param_group_of_run(optimizer, run: int) -> tuple[int, int]:
    """(the param group holding run ``run``, how many the optimizer has): ``RunByRun`` has
    one per set of options; the others one for every run."""
    if isinstance(optimizer, RunByRun):
        return optimizer.slots[run][0], len(optimizer.param_groups)
    return 0, 1


def first_runs(options: list[dict] | None) -> list[int]:
    """The first run of each param group (``RunByRun``'s, by ``options``; else one group)."""
    return [runs[0] for _, runs in by_options(options)] if options is not None else [0]


def by_options(options: list[dict]) -> list[tuple[tuple, list[int]]]:
    """The runs grouped by their options, in the order the groups first appear: ``RunByRun``'s
    param groups (each holds its runs' slices, run after run)."""
    groups: dict[tuple, list[int]] = {}
    for r, opts in enumerate(options):
        groups.setdefault(tuple(sorted(opts.items())), []).append(r)
    return list(groups.items())


def stacked_state(run_states: list[dict], options: list[dict] | None, lrs: list[float]) -> dict:
    """The group optimizer's ``state_dict()`` from each run's (as ``run_optimizer_state`` gives
    them: its own optimizer's), to resume a group: ``RunByRun``'s (``options``: exact), else
    ``PerRunLearningRates``'s (several rates) or the plain optimizer's over the stacked runs."""
    if options is not None:  # RunByRun: each param group its runs' states, run after run
        state, groups, i = {}, [], 0
        for _, runs in by_options(options):
            ids = []
            for r in runs:
                own = run_states[r]
                for j in range(len(own["param_groups"][0]["params"])):
                    if own["state"].get(j):
                        state[i] = own["state"][j]
                    ids.append(i)
                    i += 1
            first = run_states[runs[0]]["param_groups"][0]
            groups.append({**{k: v for k, v in first.items() if k != "params"}, "params": ids})
        return {"state": state, "param_groups": groups}
    one = len(set(lrs)) == 1
    first = run_states[0]
    state = {
        i: {k: torch.stack([rs["state"][i][k] for rs in run_states])
            if torch.is_tensor(v) and v.dim() > 0 else v for k, v in s.items()}
        for i, s in first["state"].items()
    }  # fmt: skip
    groups = [dict(g) if one else {**g, "lr": 1.0} for g in first["param_groups"]]
    packed = {"state": state, "param_groups": groups}
    return packed if one else {"inner": packed, "lrs": torch.as_tensor(lrs, dtype=torch.float64)}
