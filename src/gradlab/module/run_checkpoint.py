"""What gradlab adds to a Lightning checkpoint (``checkpoint["gradlab"]``), and one run's
checkpoint cut from a group's: the same keys, so ``eval.py`` and ``ckpt_path=`` take a batched
job's ``last.ckpt`` / ``best.ckpt`` as its solo run's."""

import math

import torch


def gradlab_state(updates, restart, history, last_losses, previous_loss, val_history, config):  # noqa: PLR0913
    """The module's state in a checkpoint (``GradLabModule.on_save_checkpoint``): its update
    count, the restart a minimizer is on, its loss history (``LossHistory.state_dict``), the
    latest loss per restart, the loss ``stop_tol`` compares with, the validation losses and
    the composed config."""
    return {
        "updates": updates,
        "restart": restart,
        "history": history,
        "last_losses": last_losses,
        "previous_loss": previous_loss,
        "val_history": val_history,
        "config": config,
    }


def scheduler_state_of_group(state: dict, g: int, groups: int) -> dict:
    """A scheduler's ``state_dict()`` over an optimizer's ``groups`` param groups as a run's
    own scheduler has it for group ``g``'s run (one param group): each per-group list
    (``base_lrs``, ``_last_lr``) cut to ``g``'s entry."""
    per_group = [k for k, v in state.items() if isinstance(v, list) and len(v) == groups]
    return {k: [v[g]] if k in per_group else v for k, v in state.items()}


def scheduler_state_of_groups(states: list[dict]) -> dict:
    """The inverse: one scheduler state over param groups from one run's of each group."""
    first = states[0]
    return {k: [s[k][0] for s in states] if isinstance(v, list) and len(v) == 1 else v
            for k, v in first.items()}  # fmt: skip


def checkpoint_of_run(group: dict, opt_state: dict, optim: dict, r: int, column, val_history,
                      best=None, previous: float = math.inf,
                      param_group=(0, 1)) -> dict:  # fmt: skip  # noqa: PLR0913
    """Run ``r``'s checkpoint from its group's (``group``, as Lightning assembled it: run
    ``r``'s slice of the stacked weights, the loop counters) with its own optimizer state
    (``opt_state``) and options (``optim``), loss history (``column``), validation losses,
    best validation loss and the loss its stop rule compares with; ``param_group``: (its
    param group, how many the group's optimizer has), its scheduler's state is cut to."""
    ckpt = {k: v for k, v in group.items() if k not in ("state_dict", "optimizer_states")}
    ckpt["lr_schedulers"] = [scheduler_state_of_group(state, *param_group)
                             for state in group.get("lr_schedulers") or []]  # fmt: skip
    state = {}
    for key, value in group["state_dict"].items():
        if key.startswith("model."):  # the stacked weights
            state[key] = value[r].clone()
        else:  # the module's own (val_best)
            state[key] = value if best is None else best.to(value.dtype).reshape(value.shape)
    ckpt["state_dict"] = state
    ckpt["optimizer_states"] = [opt_state]
    # the group's Lightning callbacks' states (a max_time's Timer: the time the run trained);
    # its ModelCheckpoint's is added where its files are written (pipeline.group_record)
    ckpt["callbacks"] = dict(group.get("callbacks") or {})
    hparams = dict(group.get("hyper_parameters") or {})
    if "optim" in hparams:  # the run's own optimizer options (lr, ...)
        hparams["optim"] = optim
    ckpt["hyper_parameters"] = hparams
    n = len(column)
    history = {"length": n, "losses": column.reshape(n, 1).clone(), "params": None, "kept": 0,
               "stride": 1, "initial_params": None}  # fmt: skip
    last = column[-1:].clone()  # (of a run not started: set by its caller)
    # the config: the job's, resolved where its files are written (pipeline.group_record)
    ckpt["gradlab"] = gradlab_state(n, 0, history, last, previous, val_history, None)
    return ckpt


def stack_run_checkpoints(ckpts: list[dict], optimizer_state: dict, keep=(), firsts=(0,)) -> dict:
    """A group's checkpoint from its runs' (each as ``checkpoint_of_run`` cuts it, or as its
    solo run wrote it), at the same update: what Lightning resumes the group from. Their
    weights and loss histories stacked along the run dimension; ``optimizer_state``: the
    group optimizer's (``optim.per_run.stacked_state``); ``keep``: the callback states the
    group's trainer restores (its Timer's; each run's ModelCheckpoint is its own);
    ``firsts``: the first run of each of the optimizer's param groups (their schedulers')."""
    first, runs = ckpts[0], [c["gradlab"] for c in ckpts]
    skip = ("state_dict", "optimizer_states", "callbacks", "gradlab", "lr_schedulers")
    group = {k: v for k, v in first.items() if k not in skip}
    group["state_dict"] = {
        k: torch.stack([c["state_dict"][k] for c in ckpts]) if k.startswith("model.") else v
        for k, v in first["state_dict"].items()
    }
    group["optimizer_states"] = [optimizer_state]
    group["lr_schedulers"] = [
        scheduler_state_of_groups([ckpts[r]["lr_schedulers"][k] for r in firsts])
        for k in range(len(first.get("lr_schedulers") or []))
    ]
    group["callbacks"] = {k: v for k, v in (first.get("callbacks") or {}).items() if k in keep}
    n = runs[0]["updates"]
    losses = torch.cat([g["history"]["losses"][:n].reshape(n, -1)[:, :1] for g in runs], dim=1)
    history = {**runs[0]["history"], "length": n, "losses": losses}
    last = torch.cat([g["last_losses"].reshape(-1)[:1] for g in runs])
    group["gradlab"] = gradlab_state(n, 0, history, last, math.inf, [], None)
    return group
