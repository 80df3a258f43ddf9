"""``hydra.launcher.executor=submitit_local | submitit_slurm``: the batched launcher's units of
work (a group of up to ``max_runs`` runs trained as one, or a job that cannot be batched) each
run as a job of submitit's: a process of its own, or a SLURM job (all of them one job array).
In that process the launcher's own code trains the unit (``BatchedLauncher.launch_jobs``), so
every job directory, summary row and TensorBoard run is what a local batched sweep writes.

A unit stopped by its time limit or a preemption (SIGUSR2, submitit's ``--signal``) writes
what it computed and is submitted again: its finished jobs are kept, its interrupted ones
resume from their ``last.ckpt``. A unit cancelled (``scancel``, or Ctrl-C here, which cancels
every unit) ends the sweep as an interrupted sweep ends; a unit that failed leaves each of its
jobs an ``error.txt`` naming the job id and its log file."""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals

from gradlab.errors import ClusterJobError, ConfigError
from gradlab.pipeline.signals import PREEMPTION, requested, signals_noted
from gradlab.safe_files import write_text

EXECUTORS = {"submitit_local": "local", "submitit_slurm": "slurm"}  # submitit's cluster names
POLL_S = 0.5  # how often the launcher looks at its units (a file's existence; sacct seldom)
# the launcher's keys that submitit takes as they are, and those it takes as SLURM's own
GENERIC = ("timeout_min", "cpus_per_task", "gpus_per_node", "mem_gb")
SLURM = ("partition", "account", "qos", "array_parallelism", "signal_delay_s",
         "additional_parameters", "setup")  # fmt: skip


@dataclass
class UnitResult:
    """What a unit's process sends back: its jobs' returns, how many a signal stopped, and
    that signal's name (None: it ran to its end)."""

    returns: dict
    stopped: int
    signal: str | None


class UnitJob:
    """One unit of a sweep, called in a process of its own: the launcher rebuilt there (with
    Hydra's state as it is here) trains the unit's jobs, resuming what an earlier try of the
    same unit left."""

    def __init__(self, launcher, jobs: list[tuple[int, list[str]]]):
        self.launcher_class = type(launcher)  # (rebuilt in the unit's process)
        self.options = {"max_runs": launcher.max_runs, "exact": launcher.exact,
                        "exact_up_to": launcher.exact_up_to}  # fmt: skip
        self.config, self.context = launcher.config, launcher.hydra_context
        self.task_function, self.jobs = launcher.task_function, jobs
        self.hydra_state = Singleton.get_state()

    def __call__(self) -> UnitResult:
        Singleton.set_state(self.hydra_state)
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        launcher = self.launcher_class(**self.options, resume=True)  # a requeued try continues
        launcher.setup(
            hydra_context=self.context, task_function=self.task_function, config=self.config
        )
        with signals_noted(preemption=True):
            returns, stopped = launcher.launch_jobs(self.jobs)
            return UnitResult(returns, stopped, requested())


def executor_of(launcher):
    """submitit's executor for the launcher's ``executor`` and its keys (None: not passed)."""
    try:
        import submitit
    except ImportError as e:
        raise ConfigError(
            f"hydra.launcher.executor={launcher.executor}: needs submitit "
            '(pip install -e ".[cluster]")'
        ) from e
    if launcher.executor not in EXECUTORS:
        raise ConfigError(
            f"hydra.launcher.executor: {launcher.executor!r} is not one of local, "
            f"{', '.join(EXECUTORS)}"
        )
    options = dict(launcher.submitit)
    folder = options.pop("submitit_folder")
    executor = submitit.AutoExecutor(folder=folder, cluster=EXECUTORS[launcher.executor])
    cluster = executor.cluster
    parameters = {k: options[k] for k in GENERIC if options.get(k) is not None}
    for key in SLURM:
        if options.get(key) not in (None, {}, []) and (cluster == "slurm" or key == "setup"):
            parameters[f"{cluster}_{key}"] = options[key]
    name = str(launcher.config.hydra.job.name)
    executor.update_parameters(name=name, tasks_per_node=1, nodes=1, **parameters)
    return executor


def units_of(launcher, jobs, returns: dict) -> list[list[tuple[int, list[str]]]]:
    """The sweep's units of work: each batchable group in chunks of ``max_runs`` (its
    interrupted jobs resume together in their unit), every other job a unit of its own.
    Finished jobs (``resume``) go into ``returns``."""
    units = []
    for group in launcher.plan(jobs, returns):
        if all(state == "finished" for *_, state in group):
            continue
        _, reason = launcher.alone(group)
        if reason:
            units += [[(i, o)] for i, o, _, state in group if state != "finished"]
            continue
        for chunk in launcher.chunks(group):  # (its finished jobs too: its mode is by its size)
            if any(state != "finished" for *_, state in chunk):
                units.append([(i, o) for i, o, *_ in chunk])
    return units


def launch_submitted(launcher, jobs) -> tuple[dict, int, str | None]:
    """Submit the sweep's units, wait for them (submitting a preempted one again), and
    collect their jobs' returns: ({number: JobReturn}, the number of jobs a signal stopped,
    what stopped the sweep or None)."""
    returns: dict[int, JobReturn] = {}
    units = units_of(launcher, jobs, returns)
    if not units:
        return returns, 0, None
    executor = executor_of(launcher)
    pending = submit(executor, launcher, units)
    tries = {id(unit): 0 for unit in units}
    stopped, stopped_by, cancelled, done = 0, None, False, 0
    while pending:
        if requested() and not cancelled:  # Ctrl-C here: every unit stops and writes
            for job, _ in pending:
                job.cancel(check=False)
            cancelled = True
        waiting = []
        for job, unit in pending:
            if not job.done():
                waiting.append((job, unit))
                continue
            result, failure = result_of(job)
            if result is not None and result.signal == PREEMPTION.name and not cancelled:
                tries[id(unit)] += 1
                if tries[id(unit)] <= launcher.submitit["max_requeues"]:
                    why = "stopped by its time limit or a preemption: submitted again"
                    print(f"batched launcher: job {job.job_id} {why}", file=sys.stderr)
                    waiting += submit(executor, launcher, [unit])
                    continue
                failure = f"stopped {tries[id(unit)]} times by its time limit or a preemption"
                result = None
            done += 1
            if result is not None:
                print(f"batched launcher: job {job.job_id} ended ({done}/{len(units)} units)",
                      file=sys.stderr)  # fmt: skip
                returns.update(result.returns)
                stopped += result.stopped
                stopped_by = stopped_by or result.signal
            elif failure == "cancelled":  # before it wrote anything: its jobs did not start
                stopped_by = stopped_by or f"job {job.job_id} cancelled"
            else:
                failed(launcher, job, unit, failure, returns)
        pending = waiting
        if pending:
            time.sleep(POLL_S)
    if any(r.status == JobStatus.FAILED for r in returns.values()):
        from gradlab.sweep.summarize import summarize

        summarize(launcher.config.hydra.sweep.dir, plot=False)  # the sweep ends on the error
    return returns, stopped, requested() or stopped_by


def submit(executor, launcher, units) -> list[tuple]:
    """Submit ``units`` (one job array on SLURM); [(submitit job, unit)]."""
    with executor.batch():
        jobs = [executor.submit(UnitJob(launcher, unit)) for unit in units]
    ids = jobs[0].job_id if len(jobs) == 1 else f"{jobs[0].job_id}..{jobs[-1].job_id}"
    where = "SLURM" if executor.cluster == "slurm" else "process"
    print(
        f"batched launcher: {len(units)} unit(s) of {sum(map(len, units))} jobs submitted "
        f"({where} jobs {ids}; logs: {jobs[0].paths.folder})",
        file=sys.stderr,
    )
    return list(zip(jobs, units, strict=True))


def result_of(job) -> tuple[UnitResult | None, str | None]:
    """(the unit's result, None) or (None, why it has none: "cancelled" or the job's state
    and the last line of its error)."""
    if not job.paths.result_pickle.exists() and str(job.state).startswith("CANCELLED"):
        return None, "cancelled"  # (submitit would wait for a result that cannot come)
    try:
        return job.result(), None
    except Exception as e:  # noqa: BLE001 - the unit's failure, reported per job
        state = str(job.state)
        if state.startswith("CANCELLED"):
            return None, "cancelled"
        lines = [line for line in str(e).splitlines() if line.strip()]
        return None, f"{state}: {lines[-1] if lines else type(e).__name__}"


def failed(launcher, job, unit, why: str, returns: dict) -> None:
    """Each job of a failed unit that has no result of its own gets an ``error.txt`` naming
    the submitit job and its log; its return is that error."""
    error = ClusterJobError(f"job {job.job_id} {why} (its log: {job.paths.stderr})")
    print(f"batched launcher: {error}", file=sys.stderr)
    sweep = Path(str(launcher.config.hydra.sweep.dir))
    for idx, overrides in unit:
        out = sweep / str(idx)
        if not (out / "metrics.json").is_file():
            out.mkdir(parents=True, exist_ok=True)
            write_text(out / "error.txt", f"failed: {error}\n")
        returns[idx] = JobReturn(overrides=overrides, status=JobStatus.FAILED)
        returns[idx].return_value = error
