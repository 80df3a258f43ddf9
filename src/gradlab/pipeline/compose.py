"""Composing a run's config with Hydra in-process (the API, tests, benchmarks) as
``train.py`` composes it; the schema; the config tree printed at the start of a run."""

import sys
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"  # in the package; ./conf links here


def check_overrides_parse(argv: list[str]) -> None:
    """Name the key of a command-line override that does not parse (Hydra's own message
    names only the position)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return  # --help, --cfg job, -cn ...: Hydra's own business
    parser = OverridesParser.create()
    for text in argv:
        if text.startswith("-"):
            continue
        try:
            parser.parse_override(text)
        except Exception as e:  # noqa: BLE001 - Hydra's parse errors: one line naming the key
            key, _, value = text.partition("=")
            key = key.lstrip("+~")
            reason = str(e).strip().splitlines()[0]
            raise ConfigError(
                f"{key}: cannot parse {text!r}: {reason} ({parse_hint(key, value)})"
            ) from None


def parse_hint(key: str, value: str) -> str:
    """What to write instead of an override whose ``value`` Hydra cannot parse."""
    if value.startswith("="):
        return f"one '=' between the key and its value: {key}={value.lstrip('=')}"
    if value.count("[") != value.count("]") or value.count("{") != value.count("}"):
        return f"a list closes its brackets, quoted for the shell: {key}='[1,2,1]'"
    return f"a value holding = or other signs is quoted for Hydra: \"{key}='{value}'\""


def compose_config(output_dir, *overrides: str, config_name: str = "config") -> DictConfig:
    """Compose a run's config in-process, as ``train.py`` would, writing into ``output_dir``
    (None: ``logs/<task_name>/runs/<time>``, as ``train.py`` names it)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    setup_hydra()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    if output_dir is None:  # as train.py names a run: logs/<task_name>/runs/<time>
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        output_dir = project_logs() / str(cfg.get("task_name") or "train") / "runs" / stamp
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(project_logs())  # shared stores (paths.tracking_dir) go there
        cfg.paths.root_dir = str(Path.cwd())
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.print_config = False
        if cfg.get("callbacks") and "progress_bar" in cfg.callbacks:
            cfg.callbacks.progress_bar.refresh_rate = 0
    HydraConfig().set_config(cfg)
    return cfg


def project_logs() -> Path:
    """The project's ``logs/``: in the nearest folder at or above the working directory that
    holds ``logs/`` and ``conf/`` (a notebook runs in ``notebooks/``), else ``./logs``."""
    here = Path.cwd().resolve()
    parents = (here, *here.parents)
    return (
        next((d for d in parents if (d / "logs").is_dir() and (d / "conf").is_dir()), here) / "logs"
    )


def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def setup_hydra() -> None:
    """Register the typed schema and the ``mkdir`` resolver (before composing a config)."""
    from gradlab.pipeline.schema import register_schema

    register_schema()
    if not OmegaConf.has_resolver("mkdir"):  # a path whose directory must exist, e.g. a study DB
        OmegaConf.register_new_resolver("mkdir", _mkdir)


def print_config_tree(
    cfg: DictConfig, fields=("data", "model", "loss", "optim", "grads", "trainer")
):
    """Print the main config groups as a rich tree (``print_config=false`` turns it off)."""
    import yaml
    from rich.console import Console
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
    # never cut at 80 columns when piped (a file or a CI log): long paths stay whole
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 1000)
    console.print(tree)
