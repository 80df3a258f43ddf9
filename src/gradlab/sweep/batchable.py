"""Which jobs of a sweep a batched group can train together: configs equal but for the seed
and per-group optimizer options, whose every configured callback's output the group writes
per job as the job's solo run writes it. Others run one at a time, with a line saying why."""

from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from gradlab.callbacks import (
    RunCheckpoint,
    UpdateProgressBar,
)
from gradlab.callbacks.history import TrainingHistory
from gradlab.callbacks.per_run import INSTRUMENTS
from gradlab.optim import is_minimizer
from gradlab.optim.per_run import GROUP_OPTIONS
from gradlab.pipeline.build import build_optimizer, keeps_best, target_class
from gradlab.sweep.job_dirs import parsed

# keys whose values may differ within one batched run: the seed, and options that torch's
# optimizers take per param group (each run's slices form groups: gradlab.optim.per_run)
BATCHABLE = ("seed", *(f"optim.{k}" for k in GROUP_OPTIONS))


def why_not_batchable(cfg: DictConfig) -> str | None:
    """Why this run cannot share a vectorized training (None: it can)."""
    optimizer = build_optimizer(cfg)
    if is_minimizer(getattr(optimizer, "func", None)):
        return f"optim: {optimizer.func.__name__} is a minimizer (a line search per run)"
    if cfg.get("restarts", 1) > 1:
        return "restarts > 1 (the run dimension is taken)"
    if cfg.get("ckpt_path"):
        return "ckpt_path: a resumed run"
    if cfg.grads.mode == "check":
        return "grads=check compares per run"
    if cfg.trainer.get("fast_dev_run"):  # (its solo run writes metrics.json alone)
        return "trainer.fast_dev_run: a debug run writes no checkpoints, history or figures"
    if cfg.trainer.get("profiler"):
        return "trainer.profiler: each run's own profile in its own directory"
    strategy = str(cfg.trainer.get("strategy", "auto"))
    if strategy.startswith("ddp") or cfg.trainer.get("devices", 1) not in (1, "auto"):
        return "trainer: several processes"
    model = target_class(cfg.model)
    if not hasattr(model, "round_as_solo_runs"):
        return f"model: {cfg.model['_target_']} has no run dimension (restarts) to batch over"
    if cfg.module.get("track_params"):
        return "module.track_params: each run's parameter path is recorded by its solo run"
    return callback_not_in_groups(cfg)


# callbacks whose output a batched group writes into each job as its solo run writes it;
# the value: why a node of that class would not be (None: it is)
GROUP_CALLBACKS = {
    RunCheckpoint: lambda n, cfg: (
        None
        if keeps_best(cfg)
        and n.get("save_last")
        and not n.get("every_n_train_steps")
        and n.get("save_top_k", 1) == 1
        and n.get("mode", "min") == "min"
        else "saves other checkpoints than last.ckpt and best.ckpt by the lowest val/loss"
    ),
    UpdateProgressBar: lambda n, cfg: None,  # the group prints its progress itself
    LearningRateMonitor: lambda n, cfg: (
        None if n.get("logging_interval") == "step" else "logs per epoch"
    ),
    TrainingHistory: lambda n, cfg: None,  # history.csv (module.track_params: refused above)
    **dict.fromkeys(INSTRUMENTS, lambda n, cfg: None),  # run by run (callbacks.per_run):
    # callbacks=dynamics, the figures (in_sweeps, plot_every_n_steps), dead units, the trace
}


def callback_not_in_groups(cfg: DictConfig) -> str | None:
    """Why a configured callback's output would not be written per job by a batched group
    (None: every one's is): such jobs run one at a time, as their solo runs."""
    for name, node in (cfg.get("callbacks") or {}).items():
        if not node or "_target_" not in node:  # (no callback: a solo run builds none)
            continue
        cls = target_class(node)
        check = GROUP_CALLBACKS.get(cls)
        why = check(node, cfg) if check else "runs in each job's own training only"
        if why:
            return f"callbacks.{name} ({node.get('_target_')}): {why}"
    return None


def job_config(cfg: DictConfig) -> DictConfig:
    """A job's config without Hydra's node, for building its run."""
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


def split(overrides, batchable) -> tuple[tuple, dict]:
    """(the overrides other than the batchable keys, {batchable key: value}): jobs with equal
    first parts can train together, each with its own values."""
    rest, values = [], {}
    for text in overrides:
        o = parsed(text)
        plain = not o.is_delete()  # key=v, +key=v and ++key=v set a value
        if o.key_or_group in batchable and plain:
            values[o.key_or_group] = o.value()
        else:
            rest.append(text)
    return tuple(rest), values


def why_not_written_directly(template: DictConfig) -> str | None:
    """Why Hydra's run_job must make each job (None: ``JobDirs`` writes what it would)."""
    job = template.hydra.job
    if job.chdir:
        return "hydra.job.chdir: each job runs in its own working directory"
    if job.env_set:
        return "hydra.job.env_set: each job sets environment variables"
    if "filename" in OmegaConf.to_yaml(template.hydra.job_logging):
        return "hydra.job_logging: each job writes its own log file"
    return None
