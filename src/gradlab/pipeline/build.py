"""Building a run's pieces from its composed config: each group maps to a class by ``_target_``
(one node at a time: ``gradlab.instantiate.build``, which refuses untrusted classes)."""

from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError
from gradlab.instantiate import build
from gradlab.pipeline.library_output import srun_advice


# ---------------------------------------------------------------- run pieces
def build_data(cfg: DictConfig, generator: torch.Generator, trusted: bool = True):
    return build("data", cfg.data, trusted, generator=generator)


def build_model(cfg: DictConfig, generator: torch.Generator, trusted: bool = True):
    return build("model", cfg.model, trusted, generator=generator, **restarts_arg(cfg))


def restarts_arg(cfg: DictConfig) -> dict:
    restarts = cfg.get("restarts", 1)
    return {"restarts": restarts if restarts > 1 else None}


def build_makers(cfg: DictConfig) -> tuple:
    """(data, model) classes with ``cfg``'s arguments bound (Hydra's ``_partial_``): call each
    with a generator to build what ``build_data`` and ``build_model`` build."""
    data = build("data", cfg.data, _partial_=True)
    return data, build("model", cfg.model, _partial_=True, **restarts_arg(cfg))


def build_optimizer(cfg: DictConfig, trusted: bool = True) -> partial:
    return build("optim", cfg.optim, trusted)


def build_module(cfg: DictConfig, model, data, trusted: bool = True):
    """The LightningModule from its own node, ``cfg.module`` (its ``_target_``, the run's
    groups and its options), with the drawn model, the optimizer and scheduler objects and
    the data set's task."""
    scheduler = build("scheduler", cfg.scheduler, trusted) if cfg.get("scheduler") else None
    return build(
        "module",
        cfg.module,
        _recursive_=False,  # its groups are hyperparameters, not objects to build
        net=model,
        optimizer=build_optimizer(cfg, trusted),
        lr_scheduler=scheduler,
        task=data.task,
        num_classes=data.num_classes,
    )


def updates_between_validations(cfg: DictConfig) -> int:
    """``trainer.val_check_interval`` in updates: an int counts updates (clamped to the run),
    a float is a fraction of the run in (0, 1]."""
    interval, steps = cfg.trainer.val_check_interval, cfg.trainer.max_steps
    if isinstance(interval, float):
        if not 0 < interval <= 1:
            raise ConfigError(
                f"trainer.val_check_interval: a float is a fraction of the run in (0, 1], "
                f"got {interval}"
            )
        interval = round(interval * steps)
    return max(1, min(int(interval), steps))


def build_trainer(cfg: DictConfig, data, group_callbacks: list | None = None):
    """The Trainer with the config's callbacks and loggers; every interval counts updates.
    ``group_callbacks``: a batched group's Trainer: with those callbacks instead, no logger
    and no bar (each run's files are written after it: ``pipeline.group_record``), its
    checkpoints held in memory to be cut per run (``callbacks.group_checkpoints``)."""
    if group_callbacks is not None:
        from gradlab.pipeline.checkpoint_io import HeldCheckpointIO

        group = {"callbacks": group_callbacks, "logger": False, "enable_checkpointing": False,
                 "enable_progress_bar": False, "enable_model_summary": False, "devices": 1,
                 "plugins": [HeldCheckpointIO()], "default_root_dir": None}  # fmt: skip
        return build("trainer", cfg.trainer, **validation(cfg, data), **group)
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = []
    has_logger = bool(cfg.get("logger")) and not cfg.trainer.get("fast_dev_run")
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "lr_monitor" and not has_logger:
            continue
        if name == "model_checkpoint" and data.val is None:
            node = OmegaConf.merge(node, {"monitor": None, "filename": "step{step}"})
        callbacks.append(build(f"callbacks.{name}", node))
    if cfg.search.trial is not None:  # a search's trial: report val/loss, stop if pruned
        from gradlab.callbacks.search import TrialPruning

        callbacks.append(TrialPruning(cfg.search.storage, cfg.search.study, cfg.search.trial))
    logger = (build_loggers(cfg) if has_logger else None) or False
    own = {}  # no checkpoint callback configured: no checkpoints (not Lightning's default)
    if "enable_checkpointing" not in cfg.trainer:
        own["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    with srun_advice(cfg.trainer):
        return build("trainer", cfg.trainer, callbacks=callbacks, logger=logger,
                     **validation(cfg, data), **own)  # fmt: skip


def validation(cfg: DictConfig, data) -> dict:
    """The Trainer's validation interval in updates; none without a validation set."""
    overrides = {"val_check_interval": updates_between_validations(cfg)}
    if data.val is None:
        overrides["limit_val_batches"] = 0
    return overrides


def target_class(node):
    """The class a config node builds (a callback's, a model's; None: not one gradlab knows)."""
    from hydra.utils import get_class

    try:
        return get_class(node["_target_"])
    except Exception:  # noqa: BLE001 - an unknown class: not one a group reproduces
        return None


def has_callback(cfg: DictConfig, cls) -> bool:
    return any(node and target_class(node) is cls for node in (cfg.get("callbacks") or {}).values())


def built_callbacks(cfg: DictConfig, classes: tuple, where=None) -> list:
    """The configured callbacks of ``classes``, built (``where``: only those whose node it
    accepts)."""
    return [build(f"callbacks.{name}", node) for name, node in (cfg.get("callbacks") or {}).items()
            if node and target_class(node) in classes and (not where or where(node))]  # fmt: skip


def keeps_best(cfg: DictConfig) -> bool:
    """Whether the run's callbacks keep a ``best.ckpt`` (a ModelCheckpoint of val/loss)."""
    node = (cfg.get("callbacks") or {}).get("model_checkpoint")
    return bool(node) and node.get("monitor") == "val/loss" and node.get("filename") == "best"


def build_loggers(cfg: DictConfig, label: str | None = None) -> list:
    """The configured loggers; a sweep job's TensorBoard/CSV run is named by its swept values
    (``label``; by default the running Hydra job's: ``gradlab.sweep_plan.run_label``)."""
    from gradlab.sweep_plan import run_label

    label = label or run_label()
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        extra = {"version": label} if label and "version" in node else {}
        if str(node["_target_"]).endswith("MLFlowLogger"):  # one store, named, tagged runs
            from gradlab.pipeline.mlflow_runs import logger_options

            extra = logger_options(cfg, node, label)
        elif str(node["_target_"]).endswith("WandbLogger"):  # named, tagged, its directory
            if node.get("settings"):  # W&B's console settings are its process-wide setup's
                import wandb

                mode = {"mode": "offline"} if node.get("offline") else {}
                wandb.setup(settings=wandb.Settings(**node.settings, **mode))
            extra = {"tags": [str(t) for t in cfg.get("tags") or []],
                     "notes": f"gradlab run directory: {cfg.paths.output_dir}"}  # fmt: skip
            if node.get("name") is None:
                extra["name"] = label or Path(cfg.paths.output_dir).name
        loggers.append(build(f"logger.{name}", node, **extra))
    return loggers
