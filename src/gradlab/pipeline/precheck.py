"""Checking ``train.py``'s composed config before Hydra creates the run directory: a Hydra
callback (``hydra.callbacks.config_check``), so the config is composed once, and a mistake
ends in one ``error:`` line with nothing written. The pipeline checks every run again in
full (``assemble``), for every entry point; this early pass leaves out the checks that
import Lightning."""

import json
import os
from functools import partial
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, read_write

from gradlab.errors import ConfigError, reported_errors
from gradlab.pipeline.results import is_ddp_worker
from gradlab.pipeline.run_dirs import (
    check_not_nested,
    check_only_gradlab_files,
    check_only_sweep_files,
)
from gradlab.pipeline.run_lock import lock_run_dir, unlock_run_dir
from gradlab.pipeline.validate import (
    RESULT_FILES,
    check_fresh_dir,
    check_name,
    validate,
)


def is_train_config(config: DictConfig) -> bool:
    return "trainer" in config and "model" in config


class ConfigCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if "ckpt_path" in config and "trainer" not in config:  # eval.py: before .hydra/ is written
            with reported_errors():
                check_eval_keys(config)
                files = ("metrics.json", "checkpoints", ".hydra")
                check_fresh_dir(Path(config.hydra.run.dir), "hydra.run.dir", files=files)
                check_only_gradlab_files(Path(config.hydra.run.dir), "hydra.run.dir")
        if not is_train_config(config):
            return
        with reported_errors():  # Hydra turns a callback's exceptions into warnings
            check_hydra_subdirs(config)
            validate(config, full=False)
            check_name(config.hydra.job.name, "hydra.job.name")
            explicit = any(o.startswith("hydra.run.dir=") for o in config.hydra.overrides.hydra)
            own = os.environ.get("GRADLAB_SWEEP_JOB") == "1"  # a sweep's DDP job: its own dir
            if is_ddp_worker():  # the directory is rank 0's, and so is Hydra's record of
                with read_write(config.hydra):  # the run (.hydra/): srun starts every rank
                    config.hydra.output_subdir = None  # at once (Lightning's ranks: the same)
                return
            if own:  # the sweep job's
                return
            run_dir = Path(config.hydra.run.dir)
            if run_dir.exists() and not run_dir.is_dir():
                raise ConfigError(f"hydra.run.dir: {run_dir} is a file, not a directory")
            check_not_nested(run_dir, "hydra.run.dir")  # before the lock creates anything
            check_only_gradlab_files(run_dir, "hydra.run.dir")
            if config.get("ckpt_path"):  # resuming: the same run, before .hydra/ is rewritten
                check_resume(config)
            check = (lambda: check_writable(run_dir, config.get("ckpt_path"))) if explicit else None
            lock_run_dir(run_dir, "hydra.run.dir", check)  # before Hydra writes .hydra/ there

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if is_train_config(config):
            with reported_errors():
                check_hydra_subdirs(config)
                validate(config, full=False)
                check_name(config.hydra.job.name, "hydra.job.name")
                check_some_jobs(config)
                sweep_dir = Path(config.hydra.sweep.dir)
                check_not_nested(sweep_dir, "hydra.sweep.dir")
                check_only_sweep_files(sweep_dir, "hydra.sweep.dir")
                # one sweep per directory, for its lifetime; an Optuna study continues in its own
                continues = "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()
                check = None if continues else (lambda: check_no_other_sweep(sweep_dir))
                if config.hydra.launcher.get("resume"):  # the batched launcher continues it
                    check = partial(check_same_sweep, sweep_dir, config)
                lock_run_dir(sweep_dir, "hydra.sweep.dir", check)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        unlock_run_dir(Path(config.hydra.sweep.dir))


EVAL_KEYS = {"task_name", "ckpt_path", "accelerator", "paths", "hydra"}


def check_eval_keys(config: DictConfig) -> None:
    """eval.py reads only its own keys: anything else is a typo, refused (not ignored)."""
    from gradlab.errors import did_you_mean

    for key in config:
        if key not in EVAL_KEYS:
            raise ConfigError(
                f"{key}: eval.py does not read this key{did_you_mean(key, EVAL_KEYS)} (it "
                "takes ckpt_path, accelerator, task_name and paths.*)"
            )


def check_resume(config: DictConfig) -> None:
    """The checkpoint's run computes what this config computes (``RESUME_KEYS``)."""
    from gradlab.pipeline.checkpoint_io import load_checkpoint
    from gradlab.pipeline.run import check_same_run

    ckpt = load_checkpoint(config.ckpt_path)
    check_same_run(ckpt["gradlab"].get("config") or {}, config)


def check_hydra_subdirs(config: DictConfig) -> None:
    """``hydra.output_subdir`` and ``hydra.sweep.subdir`` name places inside the run's (the
    sweep's) directory: no absolute path, no ``..`` (Hydra would write another run's
    ``.hydra/`` or train a job outside the sweep)."""
    from omegaconf import OmegaConf

    hydra = OmegaConf.to_container(config.hydra, resolve=False)
    for key, value in (("output_subdir", hydra.get("output_subdir")),
                       ("sweep.subdir", hydra.get("sweep", {}).get("subdir"))):  # fmt: skip
        if value is None:
            continue
        text = str(value)
        if Path(text).is_absolute() or ".." in Path(text).parts:
            raise ConfigError(
                f"hydra.{key}: {text!r} leaves the run's directory; give a name inside it "
                "(no absolute path, no '..')"
            )


def check_some_jobs(config: DictConfig) -> None:
    """A grid sweep whose overrides expand to no job (``optim.lr=range(0,0)``) is refused:
    Hydra would launch nothing and exit 0. So is one whose jobs would share a directory
    (a ``hydra.sweep.subdir`` that gives two jobs the same name)."""
    from omegaconf import OmegaConf

    from gradlab.sweep_plan import plan_jobs

    sweeper = str(config.hydra.sweeper.get("_target_", ""))
    if not sweeper.endswith(("BasicSweeper", "GridSweeper")):
        return
    jobs = plan_jobs(config)
    if not jobs:
        swept = [o for o in config.hydra.overrides.task if "," in o or "(" in o]
        raise ConfigError(
            f"{' '.join(swept) or 'the sweep'}: expands to no jobs; give every swept key at "
            "least one value"
        )
    subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))
    names: dict[str, int] = {}
    for num, overrides in enumerate(jobs):
        name = job_subdir(subdir, num, overrides)
        if name in names:
            raise ConfigError(
                f"hydra.sweep.subdir: {subdir!r} names jobs #{names[name]} and #{num} alike "
                f"({name!r}), so one would write over the other; name the job in it (e.g. "
                "${hydra.job.num}, the default)"
            )
        names[name] = num


def job_subdir(template: str, num: int, overrides: list[str]) -> str:
    """``hydra.sweep.subdir`` of job ``num`` as far as the jobs differ: its number, its
    overrides (``override_dirname``) and its overridden keys; other interpolations are the
    same for every job."""
    import re

    values = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)

    def value(match) -> str:
        key = match.group(1).strip()
        if key in ("hydra.job.num", "hydra.job.id"):
            return str(num)
        if key == "hydra.job.override_dirname":
            return ",".join(overrides)
        return values.get(key, match.group(0))

    return re.sub(r"\$\{([^}]+)\}", value, template)


def check_no_other_sweep(sweep_dir: Path) -> None:
    """A sweep directory that holds another sweep's jobs is refused: Hydra would relabel them
    with this sweep's overrides, and their results would be mixed with this sweep's."""
    jobs = [
        p
        for p in (sweep_dir.iterdir() if sweep_dir.is_dir() else [])
        if p.name.isdigit() and any((p / f).exists() for f in (".hydra", *RESULT_FILES))
    ]
    if jobs:
        raise ConfigError(
            f"hydra.sweep.dir: {sweep_dir} holds another sweep's jobs ({len(jobs)} runs); "
            "choose a new directory (or leave it out for a fresh one)"
        )


def check_same_sweep(sweep_dir: Path, config: DictConfig) -> None:
    """``hydra.launcher.resume=true`` continues the sweep whose jobs ``sweep_dir`` holds: this
    command must plan the same jobs."""
    from gradlab.sweep_plan import PLAN, plan_jobs

    plan = sweep_dir / PLAN
    if not plan.is_file() or json.loads(plan.read_text()) != plan_jobs(config):
        raise ConfigError(
            f"hydra.launcher.resume: {sweep_dir} does not hold this sweep's jobs (its plan, "
            f"{plan.name}, differs or is missing); resume with the command the sweep printed"
        )


def check_writable(run_dir: Path, ckpt_path=None) -> None:
    check_fresh_dir(run_dir, "hydra.run.dir", ckpt_path)
    if not os.access(run_dir, os.W_OK):
        raise ConfigError(f"hydra.run.dir: {run_dir} is not writable")
