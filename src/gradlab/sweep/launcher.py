"""``hydra/launcher=batched``: jobs of a sweep whose configs differ only in batchable keys
(``seed`` and per-group optimizer options: ``gradlab.sweep.batched.BATCHABLE``) train as one
vectorized run (``gradlab.sweep.batched``); every job still gets its own
directory as the basic launcher writes it (``.hydra/``, ``metrics.json``, ``history.csv``, its
TensorBoard run) and its summary row. Jobs that cannot be batched run one at a time, with a
line saying why."""

import copy
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.gradlab_batched.BatchedLauncher"  # the shim Hydra finds
    max_runs: int = 4096  # runs per vectorized training (more are split into several)
    exact: bool = True  # each run's matmuls and optimizer step as its own run rounds them


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="gradlab"
)


def split(overrides, batchable) -> tuple[tuple, dict]:
    """(the overrides other than the batchable keys, {batchable key: value}): jobs with equal
    first parts can train together, each with its own values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    rest, values = [], {}
    for text, o in zip(overrides, OverridesParser.create().parse_overrides(overrides), strict=True):
        plain = not o.is_delete()  # key=v, +key=v and ++key=v set a value
        if o.key_or_group in batchable and plain:
            values[o.key_or_group] = o.value()
        else:
            rest.append(text)
    return tuple(rest), values


def override_dirname(cfg: DictConfig, overrides) -> str:
    """``hydra.job.override_dirname`` as Hydra derives it from a job's overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    conf = cfg.hydra.job.config.override_dirname
    lines = sorted(
        o.input_line
        for o in OverridesParser.create().parse_overrides(list(overrides))
        if o.key_or_group not in conf.exclude_keys
    )
    return conf.item_sep.join(lines).replace("=", conf.kv_sep)


def job_from_template(template: DictConfig, overrides, values: dict, idx: int) -> DictConfig:
    """A job's config from its group's composed one: only the batchable keys differ."""
    cfg = copy.deepcopy(template)
    with open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
        cfg.hydra.overrides.task = list(overrides)
        cfg.hydra.job.override_dirname = override_dirname(cfg, overrides)
        cfg.hydra.job.id = idx
        cfg.hydra.job.num = idx
    return cfg


class BatchedLauncher(Launcher):
    def __init__(self, max_runs: int = 4096, exact: bool = True) -> None:
        self.max_runs, self.exact = max_runs, exact

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from gradlab.sweep.batched import (
            BATCHABLE,
            BATCHABLE_INEXACT,
            job_config,
            train_batched,
            why_not_batchable,
        )

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        groups: dict[tuple, list] = {}
        for i, overrides in enumerate(job_overrides):
            rest, values = split(list(overrides), BATCHABLE if self.exact else BATCHABLE_INEXACT)
            groups.setdefault(rest, []).append((initial_job_idx + i, overrides, values))
        jobs, batches = [], []
        for members in groups.values():
            template = self.compose(members[0][1], members[0][0])
            configs = [template] + [
                job_from_template(template, overrides, values, idx)
                for idx, overrides, values in members[1:]
            ]
            batch = [
                (idx, overrides, cfg)
                for (idx, overrides, _), cfg in zip(members, configs, strict=True)
            ]
            jobs += batch
            batches.append(batch)
        returns: dict[int, JobReturn] = {}
        for group in batches:
            reason = why_not_batchable(job_config(group[0][2]))
            if reason or len(group) == 1:
                why = reason or "no other job differs from it only in batchable keys"
                names = ", ".join(f"#{idx}" for idx, _, _ in group)
                print(f"batched launcher: {names} one at a time: {why}", file=sys.stderr)
                for idx, overrides, _ in group:  # composed by Hydra, as the basic launcher does
                    cfg = self.compose(overrides, idx)
                    returns[idx] = self.run(idx, overrides, cfg, self.task_function)
                continue
            for start in range(0, len(group), self.max_runs):
                chunk = group[start : start + self.max_runs]
                print(
                    f"batched launcher: jobs #{chunk[0][0]}..#{chunk[-1][0]} as one run of "
                    f"{len(chunk)}",
                    file=sys.stderr,
                )
                outcomes = train_batched([job_config(cfg) for _, _, cfg in chunk], self.exact)
                for (idx, overrides, cfg), outcome in zip(chunk, outcomes, strict=True):
                    returns[idx] = self.run(idx, overrides, cfg, write_job(outcome))
                stopped = [o for o in outcomes if o.metrics["status"] == "interrupted"]
                if stopped:  # every job of the chunk is written: end the sweep as a run ends
                    self.interrupted(stopped[0].metrics["error"], len(stopped))
        return [returns[idx] for idx, _, _ in jobs]

    def interrupted(self, why: str, jobs: int) -> None:
        """The sweep's summary lists every job (the ones not started too); one ``error:``
        line, exit code 130."""
        from gradlab.errors import EXIT_CODES
        from gradlab.sweep.summarize import summarize

        sweep = self.config.hydra.sweep.dir
        summarize(sweep, plot=False)
        print(
            f"error: {why.split(':', 1)[0]}: sweep interrupted; {jobs} job(s) stopped at "
            f"update {why.rsplit(' ', 1)[-1]} with their history so far ({sweep}/summary.md)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_CODES["interrupted"])

    def compose(self, overrides, idx: int) -> DictConfig:
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = idx
            cfg.hydra.job.num = idx
        return cfg

    def run(self, idx, overrides, cfg, task) -> JobReturn:
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret


def write_job(outcome):
    """The task function of one batched job: write its files as its own run would."""

    def task(cfg: DictConfig):
        from gradlab.sweep.job_files import write_batched_job

        return write_batched_job(cfg, outcome)

    return task
