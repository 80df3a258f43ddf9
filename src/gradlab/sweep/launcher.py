"""``hydra/launcher=batched``: jobs of a sweep whose configs differ only in batchable keys
(``seed`` and per-group optimizer options: ``gradlab.sweep.batchable.BATCHABLE``) train as one
vectorized run (``gradlab.pipeline.group``); each job still gets its directory as the basic
launcher writes it, and its summary row. Jobs that cannot be batched run one at a time, with
a line saying why. ``hydra.launcher.executor``: the groups train in this process, or each in
a process or SLURM job of its own (``gradlab.sweep.submitted``)."""

import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

from gradlab.pipeline.gc_passes import GroupPasses, no_gc_passes, settle_libraries
from gradlab.pipeline.signals import requested, signals_noted
from gradlab.sweep.group_mode import BATCHABLE_INEXACT, check_mode, mode_of
from gradlab.sweep.job_dirs import JobDirs

log = logging.getLogger(__name__)
SHOWN_JOBS = 5  # jobs of a group listed on the console; the rest in one line


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.gradlab_batched.BatchedLauncher"  # the shim Hydra finds
    max_runs: int = 1024  # runs per vectorized training (more: several; memory grows with it)
    # true: each run's matmuls and optimizer step as its own run rounds them (bit-identical
    # to it); false: torch's batched matmul, one optimizer step (equal to rounding, faster);
    # auto: exact for groups of at most exact_up_to runs and where options other than the
    # learning rate differ, else not (a line says which)
    exact: Any = "auto"
    exact_up_to: int = 16
    resume: bool = False  # continue this sweep in its directory: interrupted jobs resume
    # where each group trains: local (in this process, one group after the other),
    # submitit_local (a process of its own per group) or submitit_slurm (a SLURM job per
    # group, all of them one job array): gradlab.sweep.submitted. The keys below are
    # submitit's and SLURM's (as hydra/launcher=submitit_slurm names them); None: not passed
    executor: str = "local"
    submitit_folder: str = "${hydra.sweep.dir}/.submitit"  # each job's logs and pickles
    timeout_min: int = 60  # a group's time limit; it is requeued when it runs out
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    mem_gb: int | None = None
    array_parallelism: int = 256  # groups running at once
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: stop, write, requeue
    max_requeues: int = 3  # a group preempted or out of time more often than this fails
    additional_parameters: dict = field(default_factory=dict)  # more sbatch options
    setup: list = field(default_factory=list)  # shell lines run before each group's python


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="gradlab"
)


class BatchedLauncher(Launcher):
    def __init__(self, max_runs: int, exact, exact_up_to: int, resume: bool,
                 executor: str = "local", **submitit) -> None:  # fmt: skip
        """``BatchedLauncherConf``'s keys (its defaults)."""
        check_mode(exact)
        self.max_runs, self.exact, self.exact_up_to = max_runs, exact, exact_up_to
        self.resume, self.executor, self.submitit = resume, executor, submitit
        self.passes = GroupPasses()  # (the collector and each group's objects)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        settle_libraries()
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        self.check_subdir()
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        with signals_noted():  # a signal stops the group at work; no later one starts
            if self.executor == "local":
                returns, stopped = self.launch_jobs(jobs)
                stopped_by = requested()
            else:  # every group a job of submitit's
                from gradlab.sweep.submitted import launch_submitted

                returns, stopped, stopped_by = launch_submitted(self, jobs)
            if stopped_by:  # every job started is written: end as an interrupted run ends
                self.interrupted(stopped_by, stopped, len(jobs) - len(returns))
        return [returns[idx] for idx, _ in jobs]

    def check_subdir(self) -> None:
        """A resumed sweep, or one of units that may be requeued, finds its jobs by number."""
        subdir = OmegaConf.to_container(self.config.hydra.sweep)["subdir"]
        if subdir == "${hydra.job.num}" or not (self.resume or self.executor != "local"):
            return
        from gradlab.errors import ConfigError

        key = "hydra.launcher.resume" if self.resume else "hydra.launcher.executor"
        raise ConfigError(
            f"{key}: finds a sweep's jobs by number; hydra.sweep.subdir is {subdir!r} "
            "(leave it out)"
        )

    def launch_jobs(self, jobs: list[tuple[int, list[str]]]) -> tuple[dict, int]:
        """Train ``jobs`` (number, overrides) in this process, group by group: ({number:
        JobReturn}, the number of jobs a signal stopped). With ``resume``, a finished job is
        kept and the interrupted ones resume together from their ``last.ckpt``."""
        returns: dict[int, JobReturn] = {}
        stopped = 0
        for group in self.plan(jobs, returns):
            if requested():
                break
            stopped += self.train_group(group, returns)
        return returns, stopped

    def plan(self, jobs, returns: dict) -> list[list]:
        """The groups of jobs equal but for the values of the same batchable keys: (number,
        overrides, {key: value}, None, "finished" (``resume``: into ``returns``) or the
        ``last.ckpt`` it resumes from)."""
        from gradlab.sweep.batchable import BATCHABLE, split

        groups = {}
        for idx, overrides in jobs:
            state = self.state_of(idx) if self.resume else None
            if state == "finished":
                returns[idx] = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
            rest, values = split(overrides, BATCHABLE_INEXACT if self.exact is False else BATCHABLE)
            key = (rest, tuple(sorted(values)))
            groups.setdefault(key, []).append((idx, overrides, values, state))
        return list(groups.values())

    def alone(self, group: list) -> tuple[DictConfig, str | None]:
        """(its first unfinished job's config, why they train one at a time or None)."""
        from gradlab.sweep.batchable import job_config, why_not_written_directly
        from gradlab.sweep.batchable import why_not_batchable as why_not

        todo = [job for job in group if job[3] != "finished"]
        template = self.compose(todo[0][1], todo[0][0])
        reason = why_not(job_config(template)) or why_not_written_directly(template)
        if not reason and len(todo) == 1:
            reason = "no other job differs from it only in batchable keys"
        return template, reason

    def train_group(self, group: list, returns: dict) -> int:
        """Train one group of jobs equal but for batchable values (one at a time when they
        cannot be batched), chunk by chunk, the jobs that resume apart from the fresh ones;
        the number of its jobs a signal stopped."""
        if all(job[3] == "finished" for job in group):
            return 0
        template, reason = self.alone(group)
        if reason:
            todo = [job for job in group if job[3] != "finished"]
            names = ", ".join(f"#{idx}" for idx, *_ in todo)
            print(f"batched launcher: {names} one at a time: {reason}", file=sys.stderr)
            for idx, overrides, _, last in todo:  # composed by Hydra, as the basic launcher does
                if requested():
                    break
                if last is not None:  # as its solo run resumes
                    overrides = [*overrides, f"ckpt_path={last}"]
                cfg = template if idx == todo[0][0] and last is None else None
                returns[idx] = self.run(idx, overrides, cfg or self.compose(overrides, idx))
            return 0
        dirs, stopped = JobDirs(template, list(group[0][2])), 0
        for chunk in self.chunks(group):
            values = [values for _, _, values, _ in chunk]
            mode = mode_of(values, self.exact, self.exact_up_to, bool(template.get("scheduler")))
            fresh = [job for job in chunk if job[3] is None]  # then those that resume:
            for part in (fresh, [job for job in chunk if job[3] not in (None, "finished")]):
                if part and not requested():
                    stopped += self.train_together(dirs, part, returns, mode)
        return stopped

    def chunks(self, group: list) -> list[list]:
        """The group in chunks of ``max_runs``, finished jobs included (mode: by size)."""
        return [group[i : i + self.max_runs] for i in range(0, len(group), self.max_runs)]

    def train_together(self, dirs, chunk, returns: dict, mode: tuple[bool, str]) -> int:
        """Train ``chunk``'s jobs as one vectorized run (``mode``: exact or not, and what its
        line says of it), each from its ``last.ckpt`` where it has one; write each job's
        directory (into ``returns``); the number of its jobs a signal stopped."""
        from gradlab.pipeline.group import train_group
        from gradlab.pipeline.group_record import GroupFiles, write_batched_job
        from gradlab.sweep_plan import label_of, swept_keys

        (exact, why), resume = mode, [last for *_, last in chunk if last is not None]
        print(
            f"batched launcher: jobs #{chunk[0][0]}..#{chunk[-1][0]} as one run of {len(chunk)}"
            f"{', resumed from their last.ckpt' if resume else ''}{why}",
            file=sys.stderr,
        )
        jobs = []
        with no_gc_passes():
            for n, (idx, overrides, values, _) in enumerate(chunk):
                if n < SHOWN_JOBS:  # a bounded console whatever the sweep's size
                    log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                jobs.append(dirs.job(idx, overrides, values))
        if len(chunk) > SHOWN_JOBS:
            sweep = self.config.hydra.sweep.dir
            log.info(
                f"\t... {len(chunk) - SHOWN_JOBS} more (each job's overrides: "
                f"{sweep}/<job>/.hydra/overrides.yaml, or summary.csv at the end)"
            )
        with self.passes.training():  # the job configs: out of the collector's passes
            outcomes = train_group(jobs, exact, resume)
        if not outcomes:  # a signal came first: the jobs keep only .hydra/ (not started)
            return 0
        keys = swept_keys(self.config.hydra)
        name = str(dirs.template.hydra.job.name)
        shared = GroupFiles(dirs.task, dirs.keys)  # (the jobs' configs, for checkpoints)
        with no_gc_passes():
            for (idx, overrides, *_), cfg, outcome in zip(chunk, jobs, outcomes, strict=True):
                if outcome is None:  # (resumed: a signal came before its group started)
                    continue
                ret = JobReturn(overrides=overrides, working_dir=os.getcwd(), task_name=name)
                label = label_of(overrides, keys)
                try:
                    ret.return_value = write_batched_job(cfg, outcome, label, keys, shared)
                    ret.status = JobStatus.COMPLETED
                except Exception as e:  # as run_job records a failed job
                    ret.return_value, ret.status = e, JobStatus.FAILED
                returns[idx] = ret
        stopped = sum(o is not None and o.metrics["status"] == "interrupted" for o in outcomes)
        del jobs, outcomes
        self.passes.done()  # (its trainer, module and data are cycles)
        return stopped

    def state_of(self, idx: int) -> str | Path | None:
        """``hydra.launcher.resume=true``: "finished" for a job this sweep finished (ok or
        diverged: kept as it is), the ``last.ckpt`` of an interrupted one, None for a job to
        run (not started, failed, or interrupted before its first checkpoint)."""
        out = Path(str(self.config.hydra.sweep.dir)) / str(idx)
        try:
            status = json.loads((out / "metrics.json").read_text())["status"]
        except (OSError, ValueError, KeyError):
            return None
        if status in ("ok", "diverged"):
            return "finished"
        last = out / "checkpoints" / "last.ckpt"
        return last if status == "interrupted" and last.is_file() else None

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
            cfg.hydra.job.id = cfg.hydra.job.num = idx
        return cfg

    def run(self, idx, overrides, cfg) -> JobReturn:
        """One job through Hydra's run_job, as the basic launcher runs it."""
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        ret = run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                      config=cfg, job_dir_key="hydra.sweep.dir",
                      job_subdir_key="hydra.sweep.subdir")  # fmt: skip
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret
