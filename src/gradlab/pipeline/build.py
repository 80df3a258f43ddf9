"""Building a run's pieces from its composed config: each group maps to a class by ``_target_``.

``trusted=False`` (a config read from a checkpoint) builds only gradlab's own data, model and
optimizer classes (and torch's optimizers and schedulers), looked up by name; any other
``_target_`` is refused before anything is imported or called.
"""

import inspect
import re
from functools import partial
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gradlab.errors import CheckpointError, ConfigError


def build(group: str, node, trusted: bool = True, **kwargs):
    """instantiate(node) with errors reported as one line naming ``group.key``."""
    if not trusted:
        check_trusted(group, node)
    try:
        return instantiate(node, **kwargs)
    except (InstantiationException, ValueError, TypeError) as e:
        while isinstance(e, InstantiationException) and e.__cause__ is not None:
            e = e.__cause__
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        key = message.split(":", 1)[0]
        if key in node:  # the class named the key: "n_train: must be ..." -> data.n_train
            raise ConfigError(f"{group}.{message}") from e
        if re.fullmatch(r"[\w.]+[.=][\w.]+", key):  # already a full key: "grads=manual: ..."
            raise ConfigError(message) from e
        raise ConfigError(f"{group}: {message}") from e


# ------------------------------------------------------------ trusted targets
def _classes(module, base: type) -> set[str]:
    """The ``module.Name`` of every public class in ``module`` derived from ``base``."""
    return {
        f"{module.__name__}.{name}"
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and not name.startswith("_")
    }


def trusted_targets(group: str) -> set[str]:
    """The ``_target_`` names a checkpoint's config may use for ``group``."""
    from torch import nn

    from gradlab import data, models, optim
    from gradlab.data.base import FullBatchDataModule

    if group == "data":
        return _classes(data, FullBatchDataModule)
    if group == "model":
        return _classes(models, nn.Module)
    if group == "optim":
        return _classes(optim, object) | _classes(torch.optim, torch.optim.Optimizer)
    if group == "scheduler":
        return _classes(torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler)
    return set()


def check_trusted(group: str, node) -> None:
    """Refuse a node that names anything but a trusted class, nests a target or interpolates."""
    allowed = trusted_targets(group)
    target = str(node.get("_target_", ""))
    if target not in allowed:
        raise CheckpointError(
            f"ckpt_path: its stored config names {target!r} as {group}._target_; "
            f"a checkpoint may only name gradlab's own {group} classes"
        )
    plain = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    text = repr({k: v for k, v in plain.items() if k != "_target_"})
    if "_target_" in text or "${" in text:
        raise CheckpointError(
            f"ckpt_path: its stored {group} config holds a nested _target_ or an "
            "interpolation; a checkpoint's config must be plain values"
        )


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


def build_model_shell(node, restarts: int, trusted: bool = True):
    """A model whose weights are overwritten right after (a checkpoint's state, or runs drawn
    by ``pipeline.run.draw`` stacked into it): built from a fixed generator, so nothing random
    enters a run here."""
    shell = torch.Generator().manual_seed(0)
    return build(
        "model", node, trusted, generator=shell, restarts=restarts if restarts > 1 else None
    )


def build_optimizer(cfg: DictConfig, trusted: bool = True) -> partial:
    return build("optim", cfg.optim, trusted)


def build_module(cfg: DictConfig, model, data, trusted: bool = True):
    """The LightningModule from ``cfg.module`` (its ``_target_`` and options) with the run's
    model, optimizer and scheduler objects; their configs become its hyperparameters."""
    scheduler = build("scheduler", cfg.scheduler, trusted) if cfg.get("scheduler") else None
    return build(
        "module",
        cfg.module,
        _recursive_=False,  # the configs below are hyperparameters, not objects to build
        net=model,
        optimizer=build_optimizer(cfg, trusted),
        lr_scheduler=scheduler,
        model_config=cfg.model,
        optim_config=cfg.optim,
        scheduler_config=cfg.get("scheduler"),
        loss=cfg.loss.name,
        grads=cfg.grads.mode,
        check_every_n_steps=cfg.grads.get("every_n_steps", 100),
        check_tol=cfg.grads.get("tol", 1e-4),
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        task=data.task,
        num_classes=data.num_classes,
        restarts=cfg.get("restarts", 1),
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


def build_trainer(cfg: DictConfig, data):
    """The Trainer with the config's callbacks and loggers; every interval counts updates."""
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
    overrides = {"val_check_interval": updates_between_validations(cfg)}
    if data.val is None:
        overrides["limit_val_batches"] = 0
    return build("trainer", cfg.trainer, callbacks=callbacks, logger=logger, **overrides)


def build_loggers(cfg: DictConfig, label: str | None = None) -> list:
    """The configured loggers; a sweep job's TensorBoard/CSV run is named by its swept values
    (``label``; by default the running Hydra job's: ``gradlab.sweep.labels.run_label``)."""
    from gradlab.sweep.labels import run_label

    label = label or run_label()
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        extra = {"version": label} if label and "version" in node else {}
        if "run_name" in node and node.run_name is None:  # MLflow: one store, named runs
            extra = {"run_name": label or Path(cfg.paths.output_dir).name}
        loggers.append(build(f"logger.{name}", node, **extra))
    return loggers
