"""``hydra/sweeper=grid``: Hydra's basic grid (the cartesian product of the command line's
sweeps, in the same order) without composing every job up front: one job per group of jobs
that differ only in batchable keys (seed, per-group optimizer options) is composed to check
the sweep (the batched launcher
composes each group once more and derives the rest). Hydra's basic sweeper composes every
job before launching, about 0.2 s each here, which bounds a sweep of thousands of runs."""

import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.gradlab_batched.GridSweeper"  # the shim Hydra finds
    params: dict | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="gradlab"
)


class GridSweeper(Sweeper):
    def __init__(self, params: dict | None = None) -> None:
        self.params = params or {}

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]):
        from gradlab.sweep.batchable import BATCHABLE, split
        from gradlab.sweep_plan import grid

        jobs = grid([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        checked = set()
        for job in jobs:  # compose one job per group: composition errors before any training
            rest, _ = split(job, BATCHABLE)
            if rest not in checked:
                checked.add(rest)
                self.validate_batch_is_legal([job])
        results = self.launcher.launch(jobs, initial_job_idx=0)
        for r in results:
            _ = r.return_value  # a failed job's exception, as Hydra's basic sweeper raises it
        return [results]
