"""The typed top level of a run's config: Hydra checks these types while it composes, so
``seed=abc`` or ``restarts=1.5`` fail before anything is imported or built.

The groups (data, model, optim, ...) stay free-form: each maps to a class by ``_target_``,
and ``gradlab.pipeline.validate`` checks their keys against that class's signature.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class ModuleOptions:
    _target_: str = "gradlab.module.GradLabModule"  # the LightningModule class
    model: Any = "${model}"  # the run's config groups (config.yaml): its hyperparameters
    optim: Any = "${optim}"
    scheduler: Any = "${scheduler}"
    loss: Any = "${loss}"
    grads: Any = "${grads}"
    restarts: Any = "${restarts}"
    grad_clip: float | None = None  # clip each restart's gradient norm (not for BFGS/L-BFGS)
    track_params: bool = False  # record the parameters along the run (history.csv, params.png)
    trajectory_budget_mb: float = 64.0  # snapshots beyond this are thinned (every 2nd kept)
    stop_tol: float | None = None  # stop once the loss changes by less than this per update


@dataclass
class SearchTrial:
    """Set by the search sweeper (``hydra/sweeper=gradlab_optuna``) for each trial's job."""

    storage: str | None = None  # the study's Optuna storage URL
    study: str | None = None
    trial: int | None = None  # the trial's number in the study


@dataclass
class RunConfig:
    task_name: str = "train"
    tags: list[str] = field(default_factory=lambda: ["dev"])
    seed: int = 1
    restarts: int = 1
    dtype: str = "float32"
    threads: int | None = 1
    ckpt_path: str | None = None
    print_config: bool = True
    print_summary: bool = True  # the end-of-run summary on the console
    test: bool = True
    optimized_metric: str | None = "val/loss_best"
    fallback_metric: str | None = "train/loss"
    on_divergence: str = "fail"
    module: ModuleOptions = field(default_factory=ModuleOptions)
    search: SearchTrial = field(default_factory=SearchTrial)
    data: Any = None
    model: Any = None
    loss: Any = None
    optim: Any = None
    scheduler: Any = None
    grads: Any = None
    trainer: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: Any = None


TOP_LEVEL_KEYS = set(RunConfig.__dataclass_fields__) | {"hydra"}


def register_schema() -> None:
    """Make ``gradlab_schema`` available to config.yaml's defaults list."""
    ConfigStore.instance().store(name="gradlab_schema", node=RunConfig)
