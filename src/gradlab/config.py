"""Building the pieces of a run from the composed Hydra config, and checking it first."""

import math
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def compose_config(output_dir, *overrides: str, config_name: str = "config") -> DictConfig:
    """Compose a run's config in-process, as ``train.py`` would, writing into ``output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    setup_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.paths.log_dir = str(output_dir)
        cfg.paths.root_dir = str(CONFIG_DIR.parent)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.print_config = False
        if cfg.get("callbacks") and "progress_bar" in cfg.callbacks:
            cfg.callbacks.progress_bar.refresh_rate = 0
    HydraConfig().set_config(cfg)
    return cfg


def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def setup_resolvers() -> None:
    if not OmegaConf.has_resolver("mkdir"):  # a path whose directory must exist, e.g. a study DB
        OmegaConf.register_new_resolver("mkdir", _mkdir)


def _cause(e: Exception) -> str:
    while isinstance(e, InstantiationException) and e.__cause__ is not None:
        e = e.__cause__
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def build(group: str, node: DictConfig, **kwargs):
    """instantiate(node) with errors reported as one line naming ``group.key``."""
    try:
        return instantiate(node, **kwargs)
    except (InstantiationException, ValueError, TypeError) as e:
        raise ConfigError(f"{group}.{_cause(e)}") from e


def _positive_int(cfg: DictConfig, key: str) -> None:
    v = OmegaConf.select(cfg, key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"{key}: must be a positive integer, got {v!r}")


def validate(cfg: DictConfig) -> None:
    """Fail before any training on values that cannot work."""
    for key in (
        "trainer.max_steps",
        "trainer.log_every_n_steps",
        "restarts",
        "threads",
    ):
        _positive_int(cfg, key)
    lr = OmegaConf.select(cfg, "optim.lr")
    if lr is not None and (not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0):
        raise ConfigError(f"optim.lr: must be a finite positive number, got {lr!r}")
    if cfg.grads.mode not in ("autograd", "manual", "check"):
        raise ConfigError(f"grads.mode: unknown mode {cfg.grads.mode!r}")
    if cfg.get("dtype") not in (None, "float32", "float64"):
        raise ConfigError(f"dtype: must be float32 or float64, got {cfg.dtype!r}")


@contextmanager
def torch_settings(cfg: DictConfig):
    """The run's default dtype and intra-op threads (process-wide torch settings), restored
    when the block ends, so a float64 run leaves the Python session as it found it."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(getattr(torch, cfg.get("dtype") or "float32"))
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)


def build_data(cfg: DictConfig, generator: torch.Generator):
    return build("data", cfg.data, generator=generator)


def build_model(cfg: DictConfig, generator: torch.Generator):
    restarts = cfg.get("restarts", 1)
    return build(
        "model", cfg.model, generator=generator, restarts=restarts if restarts > 1 else None
    )


def build_optimizer(cfg: DictConfig):
    return build("optim", cfg.optim)


def build_module(cfg: DictConfig, model, data):
    """The LightningModule: the model with its loss, optimizer and gradient source."""
    from .lit import GradLabModule

    scheduler = build("scheduler", cfg.scheduler) if cfg.get("scheduler") else None
    try:
        return GradLabModule(
            model=model,
            optimizer=build_optimizer(cfg),
            loss=cfg.loss.name,
            scheduler=scheduler,
            grads=cfg.grads.mode,
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            check_every_n_steps=cfg.grads.get("every_n_steps", 100),
            check_tol=cfg.grads.get("tol", 1e-4),
            task=data.task,
            num_classes=data.num_classes,
            **cfg.module,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e


def collect_metrics(metrics: dict) -> dict:
    """Plain floats from Lightning's metric dict (scalar tensors and numbers only)."""
    out = {}
    for k, v in metrics.items():
        v = v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v
        if isinstance(v, int | float):
            out[k] = float(v)
    return out


def one_line(e: BaseException) -> str:
    return _cause(e) if isinstance(e, Exception) else str(e)


def print_config_tree(
    cfg: DictConfig, fields=("data", "model", "loss", "optim", "grads", "trainer")
):
    """Print the main config groups as a rich tree (``print_config=false`` turns it off)."""
    import yaml
    from rich import print as rprint
    from rich.syntax import Syntax
    from rich.tree import Tree

    class FlowListDumper(yaml.SafeDumper):
        """Lists of plain values on one line: ``sizes: [2, 3, 4, 1]``."""

    def represent_list(dumper, data):
        flow = all(not isinstance(v, list | dict) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    FlowListDumper.add_representer(list, represent_list)
    tree = Tree("config", guide_style="dim")
    for f in fields:
        if f in cfg:
            node = OmegaConf.to_container(cfg[f], resolve=True)
            body = yaml.dump(node, Dumper=FlowListDumper, sort_keys=False).rstrip()
            tree.add(f).add(Syntax(body, "yaml", theme="ansi_dark"))
    rprint(tree, file=sys.stdout)
