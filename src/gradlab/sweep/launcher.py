"""``hydra/launcher=batched``: jobs of a sweep whose configs differ only in batchable keys
(``seed`` and per-group optimizer options: ``gradlab.sweep.batched.BATCHABLE``) train as one
vectorized run (``gradlab.sweep.batched``); every job still gets its own
directory as the basic launcher writes it (``.hydra/``, ``metrics.json``, ``history.csv``, its
TensorBoard run) and its summary row. Jobs that cannot be batched run one at a time, with a
line saying why."""

import contextlib
import gc
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from gradlab.pipeline.signals import requested, signals_noted
from gradlab.sweep.job_dirs import JobDirs, parsed

log = logging.getLogger(__name__)
SHOWN_JOBS = 5  # jobs of a group listed on the console; the rest in one line


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.gradlab_batched.BatchedLauncher"  # the shim Hydra finds
    max_runs: int = 1024  # runs per vectorized training (more: several; memory grows with it)
    exact: bool = True  # each run's matmuls and optimizer step as its own run rounds them
    resume: bool = False  # continue this sweep in its directory: interrupted jobs resume


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="gradlab"
)


def split(overrides, batchable) -> tuple[tuple, dict]:
    """(the overrides other than the batchable keys, {batchable key: value}): jobs with equal
    first parts can train together, each with its own values."""
    rest, values = [], {}
    for text in overrides:
        o = parsed(text)
        plain = not o.is_delete()  # key=v, +key=v and ++key=v set a value
        if o.key_or_group in batchable and plain:
            values[o.key_or_group] = o.value()
        else:
            rest.append(text)
    return tuple(rest), values


class BatchedLauncher(Launcher):
    def __init__(self, max_runs: int = 1024, exact: bool = True, resume: bool = False) -> None:
        self.max_runs, self.exact, self.resume = max_runs, exact, resume

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from gradlab.sweep.batchable import BATCHABLE, BATCHABLE_INEXACT

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        subdir = OmegaConf.to_container(self.config.hydra.sweep)["subdir"]
        if self.resume and subdir != "${hydra.job.num}":
            from gradlab.errors import ConfigError

            raise ConfigError(
                f"hydra.launcher.resume: finds a sweep's jobs by number; hydra.sweep.subdir "
                f"is {subdir!r} (leave it out)"
            )
        groups: dict[tuple, list] = {}  # equal but for the values of the same batchable keys
        returns: dict[int, JobReturn] = {}
        for i, overrides in enumerate(job_overrides):
            if self.resume and self.continued(initial_job_idx + i, list(overrides), returns):
                continue
            rest, values = split(list(overrides), BATCHABLE if self.exact else BATCHABLE_INEXACT)
            key = (rest, tuple(sorted(values)))
            groups.setdefault(key, []).append((initial_job_idx + i, list(overrides), values))
        with signals_noted():  # a signal stops the group at work; no later one starts
            stopped = 0
            for group in groups.values():
                if requested():
                    break
                stopped += self.train_group(group, returns)
            if requested():  # every job started is written: end as an interrupted run ends
                not_started = len(job_overrides) - len(returns)
                self.interrupted(requested(), stopped, not_started)
        return [returns[initial_job_idx + i] for i in range(len(job_overrides))]

    def train_group(self, group: list, returns: dict) -> int:
        """Train one group of jobs equal but for batchable values (one at a time when they
        cannot be batched); the number of its jobs a signal stopped."""
        from gradlab.sweep.batchable import job_config
        from gradlab.sweep.batchable import why_not_batchable as why_not

        template = self.compose(group[0][1], group[0][0])
        reason = why_not(job_config(template)) or why_not_written_directly(template)
        if reason or len(group) == 1:
            why = reason or "no other job differs from it only in batchable keys"
            names = ", ".join(f"#{idx}" for idx, _, _ in group)
            print(f"batched launcher: {names} one at a time: {why}", file=sys.stderr)
            for idx, overrides, _ in group:  # composed by Hydra, as the basic launcher does
                if requested():
                    break
                cfg = template if idx == group[0][0] else self.compose(overrides, idx)
                returns[idx] = self.run(idx, overrides, cfg)
            return 0
        dirs, stopped = JobDirs(template, list(group[0][2])), 0
        for start in range(0, len(group), self.max_runs):
            if requested():
                break
            stopped += self.train_together(dirs, group[start : start + self.max_runs], returns)
        return stopped

    def train_together(self, dirs, chunk, returns: dict) -> int:
        """Train ``chunk``'s jobs as one vectorized run; write each job's directory (into
        ``returns``); the number of its jobs a signal stopped."""
        from gradlab.sweep.batched import train_batched
        from gradlab.sweep.job_files import write_batched_job
        from gradlab.sweep_plan import label_of, swept_keys

        print(
            f"batched launcher: jobs #{chunk[0][0]}..#{chunk[-1][0]} as one run of {len(chunk)}",
            file=sys.stderr,
        )
        jobs = []
        with no_gc_passes():
            for n, (idx, overrides, values) in enumerate(chunk):
                if n < SHOWN_JOBS:  # a bounded console whatever the sweep's size
                    log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                jobs.append(dirs.job(idx, overrides, values))
        if len(chunk) > SHOWN_JOBS:
            sweep = self.config.hydra.sweep.dir
            log.info(
                f"\t... {len(chunk) - SHOWN_JOBS} more (each job's overrides: "
                f"{sweep}/<job>/.hydra/overrides.yaml, or summary.csv at the end)"
            )
        gc.freeze()  # the job configs live until the end: later passes need not scan them
        try:
            outcomes = train_batched(jobs, self.exact)
        finally:
            gc.unfreeze()
        if not outcomes:  # a signal came first: the jobs keep only .hydra/ (not started)
            return 0
        keys = swept_keys(self.config.hydra)
        name = str(dirs.template.hydra.job.name)
        with no_gc_passes():
            for (idx, overrides, _), cfg, outcome in zip(chunk, jobs, outcomes, strict=True):
                ret = JobReturn(overrides=overrides, working_dir=os.getcwd(), task_name=name)
                label = label_of(overrides, keys)
                try:
                    ret.return_value = write_batched_job(cfg, outcome, label, keys)
                    ret.status = JobStatus.COMPLETED
                except Exception as e:  # as run_job records a failed job
                    ret.return_value, ret.status = e, JobStatus.FAILED
                returns[idx] = ret
        stopped = sum(o.metrics["status"] == "interrupted" for o in outcomes)
        del jobs, outcomes
        gc.collect()  # the group's trainer, module and data are cycles: free them now
        return stopped

    def continued(self, idx: int, overrides: list[str], returns: dict) -> bool:
        """``hydra.launcher.resume=true``: a job this sweep finished is kept, an interrupted
        one resumes alone from its ``last.ckpt`` (as its solo run resumes, to equal it); False
        for a job to run (not started, failed, or interrupted before its first checkpoint)."""
        out = Path(str(self.config.hydra.sweep.dir)) / str(idx)
        try:
            status = json.loads((out / "metrics.json").read_text())["status"]
        except (OSError, ValueError, KeyError):
            return False
        if status in ("ok", "diverged"):  # a result: kept as it is
            returns[idx] = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
            return True
        last = out / "checkpoints" / "last.ckpt"
        if status != "interrupted" or not last.is_file():
            return False
        resumed = [*overrides, f"ckpt_path={last}"]
        returns[idx] = self.run(idx, resumed, self.compose(resumed, idx))
        return True

    def interrupted(self, signal: str, stopped: int, not_started: int) -> None:
        """The sweep's summary lists every job (the ones not started too); one ``error:``
        line, exit code 130."""
        from gradlab.errors import EXIT_CODES
        from gradlab.sweep.summarize import summarize

        sweep = self.config.hydra.sweep.dir
        summarize(sweep, plot=False)
        own = ("hydra.mode=", "hydra.sweep.dir=", "hydra.launcher.resume=")
        hydra = [o for o in self.config.hydra.overrides.hydra if not o.startswith(own)]
        command = shlex.join(
            ["python", "train.py", "-m", *hydra, *self.config.hydra.overrides.task,
             f"hydra.sweep.dir={sweep}", "hydra.launcher.resume=true"]
        )  # fmt: skip
        parts = [f"{stopped} job(s) stopped with their history so far"] if stopped else []
        parts += [f"{not_started} not started"] if not_started or not stopped else []
        print(
            f"error: {signal}: sweep interrupted; {', '.join(parts)} ({sweep}/summary.md); "
            f"resume with: {command}",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_CODES["interrupted"])

    def compose(self, overrides, idx: int) -> DictConfig:
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = idx
            cfg.hydra.job.num = idx
        return cfg

    def run(self, idx, overrides, cfg) -> JobReturn:
        """One job through Hydra's run_job, as the basic launcher runs it."""
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret


@contextlib.contextmanager
def no_gc_passes():
    """Python's cycle collector off while a group's job files are made or written: each of
    its passes scans every live object, and a group's thousands of job configs made its
    passes most of that time (a 1000-job sweep: 6.0 s -> 3.5 s making the jobs here). What
    it would have collected is collected when it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def why_not_written_directly(template: DictConfig) -> str | None:
    """Why Hydra's run_job must make each job (None: ``JobDirs`` writes what it would)."""
    job = template.hydra.job
    if job.chdir:
        return "hydra.job.chdir: each job runs in its own working directory"
    if job.env_set:
        return "hydra.job.env_set: each job sets environment variables"
    if "filename" in OmegaConf.to_yaml(template.hydra.job_logging):
        return "hydra.job_logging: each job writes its own log file"
    return None
