"""Which sweep a process runs in and what it varies: the names of a job's logger runs and
the order of its hyperparameters come from here."""

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
