"""Which sweep a process runs in, the jobs it plans and the keys they vary: the names of a
job's logger runs and the order of its hyperparameters come from here."""

import json
from pathlib import Path

PLAN = ".sweep_plan.json"  # the jobs a basic sweep will run, written when it starts


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def swept_keys(hydra_cfg=None) -> list[str]:
    """The keys a sweep varies: from the basic sweeper's plan, or a search's parameters;
    ``hydra_cfg``: the sweep's Hydra node (by default the running job's; empty outside a
    sweep)."""
    from hydra.core.hydra_config import HydraConfig

    if hydra_cfg is None:
        if not in_sweep():
            return []
        hydra_cfg = HydraConfig.get()
    plan = Path(hydra_cfg.sweep.dir) / PLAN
    if not plan.is_file():
        return [str(k) for k in (hydra_cfg.sweeper.get("params") or {})]
    values: dict[str, set] = {}
    for job in json.loads(plan.read_text()):
        for o in job:
            key, _, value = o.partition("=")
            values.setdefault(key.lstrip("+~"), set()).add(value)
    return [k for k, v in values.items() if len(v) > 1]


def run_label() -> str | None:
    """The running sweep job's name from its swept values (None outside a sweep)."""
    from hydra.core.hydra_config import HydraConfig

    keys = swept_keys()
    return label_of(HydraConfig.get().overrides.task, keys) if keys else None


def label_of(overrides, keys: list[str]) -> str | None:
    """A sweep job's name from its values of the swept ``keys``, short enough for a
    dashboard's run list: each key by its last part unless two keys share it, e.g.
    ``lr=0.1,seed=2`` for ``optim.lr`` and ``seed``."""
    mine = {}
    for o in overrides:
        key, _, value = o.partition("=")
        mine[key.lstrip("+~")] = value
    last = [k.rsplit(".", 1)[-1] for k in keys]
    short = {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}
    return ",".join(f"{short[k]}={mine[k]}" for k in keys if k in mine) or None


def grid(texts: list[str]) -> list[list[str]]:
    """The jobs of a grid sweep over ``texts`` as Hydra's basic sweeper orders them: the
    cartesian product of the sweeps, a repeated key's last value winning."""
    import itertools

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # Hydra's own parser with the running app's config loader, as its basic sweeper creates
    # it: glob(...) over a config group's options needs the loader to list them
    hydra = GlobalHydra.instance()
    loader = hydra.config_loader() if hydra.is_initialized() else None
    choices: dict[str, list[str]] = {}
    for o in OverridesParser.create(config_loader=loader).parse_overrides(texts):
        key = o.get_key_element()
        if o.is_sweep_override():
            try:
                choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
            except Exception as e:  # noqa: BLE001 - Hydra's refusal, given the key it is about
                from gradlab.errors import ConfigError

                raise ConfigError(
                    f"{key}: {o.input_line.split('=', 1)[-1]} cannot be listed as a grid of "
                    f"jobs ({e}); use choice(...) or range(...), or a search: "
                    "hparams_search=sincos_optuna"
                ) from None
        else:
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*choices.values())]


def plan_jobs(config) -> list[list[str]]:
    """The override lists of the basic sweeper's jobs (``hydra.sweeper.params`` then the
    command line), so a summary can list the jobs not yet started."""
    params = config.hydra.sweeper.get("params") or {}
    return grid([f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task))
