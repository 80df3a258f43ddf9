"""Building the pieces of a run from the composed Hydra config, and checking it first."""

import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # shipped in the package; ./conf links here


HYDRA_FLAGS_WITHOUT_VALUE = {"-m", "--multirun"}


def compose_command_line(argv: list[str], config_name: str = "config") -> DictConfig | None:
    """Compose the config a command line asks for, as Hydra will (a sweep: its first job), to
    check it before anything heavy runs. None when the line has flags only Hydra handles."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.startswith("-") and a not in HYDRA_FLAGS_WITHOUT_VALUE for a in argv):
        return None  # --help, --cfg, -cp ...: Hydra's own business
    overrides = [a for a in argv if not a.startswith("-")]
    parser = OverridesParser.create()
    for text in overrides:  # name the key of an override that does not parse
        try:
            parser.parse_override(text)
        except Exception as e:  # noqa: BLE001 - Hydra's parse errors: one line naming the key
            key = text.split("=", 1)[0].lstrip("+~")
            reason = str(e).strip().splitlines()[0]
            raise ConfigError(
                f"{key}: cannot parse {text!r}: {reason} (quote lists: {key}='[1,2,1]')"
            ) from None
    first = []
    for text, o in zip(overrides, parser.parse_overrides(overrides), strict=True):
        if not o.is_sweep_override():
            first.append(text)
            continue
        try:
            value = next(iter(o.sweep_string_iterator()))
        except Exception:  # noqa: BLE001 - ranges for a search sampler: not composed here
            continue
        first.append(f"{o.get_key_element()}={value}")
    setup_hydra()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=first, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def compose_config(output_dir, *overrides: str, config_name: str = "config") -> DictConfig:
    """Compose a run's config in-process, as ``train.py`` would, writing into ``output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    setup_hydra()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.paths.log_dir = str(output_dir)
        cfg.paths.root_dir = str(Path.cwd())
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.print_config = False
        if cfg.get("callbacks") and "progress_bar" in cfg.callbacks:
            cfg.callbacks.progress_bar.refresh_rate = 0
    HydraConfig().set_config(cfg)
    return cfg


def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def setup_hydra() -> None:
    """Register the typed schema and the ``mkdir`` resolver (before composing a config)."""
    from .schema import register_schema

    register_schema()
    if not OmegaConf.has_resolver("mkdir"):  # a path whose directory must exist, e.g. a study DB
        OmegaConf.register_new_resolver("mkdir", _mkdir)


def build(group: str, node: DictConfig, **kwargs):
    """instantiate(node) with errors reported as one line naming ``group.key``."""
    try:
        return instantiate(node, **kwargs)
    except (InstantiationException, ValueError, TypeError) as e:
        while isinstance(e, InstantiationException) and e.__cause__ is not None:
            e = e.__cause__
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        key = message.split(":", 1)[0]
        if key in node:  # the class named the key: "n_train: must be ..." -> data.n_train
            raise ConfigError(f"{group}.{message}") from e
        raise ConfigError(f"{group}: {message}") from e


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
