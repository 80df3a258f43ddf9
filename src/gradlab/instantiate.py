"""One config node -> its object (Hydra's ``instantiate``), with errors as one line naming
the key.

``trusted=False`` (a config read from a checkpoint) builds only gradlab's own data, model and
optimizer classes (and torch's optimizers and schedulers), looked up by name; any other
``_target_`` is refused before anything is imported or called.
"""

import inspect
import re

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

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


def build_model_shell(node, restarts: int, trusted: bool = True):
    """A model whose weights are overwritten right after (a checkpoint's state, or runs
    drawn by ``gradlab.pipeline.run.draw`` stacked into it): built from a fixed generator,
    so nothing random enters a run here."""
    shell = torch.Generator().manual_seed(0)
    return build(
        "model", node, trusted, generator=shell, restarts=restarts if restarts > 1 else None
    )
