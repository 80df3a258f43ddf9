"""The Hydra task of ``train.py``: one run through the pipeline, with every failure ending in
one ``error:`` line. A single run exits with the failure's code; a sweep job records its
failure and the sweep goes on (its end names the failed jobs), except on Ctrl-C."""

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gradlab.errors import (
    EXIT_CODES,
    ConfigError,
    Interrupted,
    error_line,
    exit_code,
    show_traceback,
    status_of,
)
from gradlab.pipeline.results import record_failure, sweep_metric
from gradlab.pipeline.run import train
from gradlab.pipeline.signals import requested


def run_task(cfg: DictConfig):
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and uses_ddp(cfg):
        return run_job_in_own_process(cfg)
    if multirun and HydraConfig.get().job.num > 0:  # the config tree once per sweep
        cfg.print_config = False
    try:
        if requested():  # a signal came before this run started: it does not start
            raise Interrupted(f"{requested()}: stopped before this run started")
        metrics, _ = train(cfg)
        return sweep_metric(cfg, metrics) if multirun else None
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        if isinstance(e, ConfigError) and str(e).startswith("optimized_metric"):
            record_failure(Path(cfg.paths.output_dir), e)
        if show_traceback():
            traceback.print_exc()
        if status_of(e) == "pruned":  # a search's answer, not a failure
            print(error_line(e))
            return None
        print(f"error: {error_line(e)}", file=sys.stderr)
        if multirun and isinstance(e, KeyboardInterrupt):
            from gradlab.sweep.summarize import summarize

            summarize(HydraConfig.get().sweep.dir, plot=False)  # every job listed, this one too
        if multirun and not isinstance(e, KeyboardInterrupt):
            return sweep_metric(cfg, {"status": status_of(e)})
        raise SystemExit(exit_code(e)) from None


def uses_ddp(cfg: DictConfig) -> bool:
    strategy = str(cfg.trainer.get("strategy", "auto"))
    devices = cfg.trainer.get("devices", 1)
    return strategy.startswith("ddp") or (isinstance(devices, int) and devices > 1)


def run_job_in_own_process(cfg: DictConfig):
    """A DDP job of a sweep runs as a single run in a process of its own: Lightning restarts
    the script for its workers, which in this process would run the whole sweep again."""
    out = Path(cfg.paths.output_dir)
    command = [sys.executable, "-m", "gradlab", "train", *HydraConfig.get().overrides.task]
    command += ["hydra.mode=RUN", f"hydra.run.dir={out}", "hydra.output_subdir=null"]
    env = dict(os.environ, GRADLAB_SWEEP_JOB="1")  # the directory is this job's own
    code = subprocess.run(command, env=env).returncode
    if code == EXIT_CODES["interrupted"]:
        raise Interrupted(f"job {out.name} interrupted")
    metrics_file = out / "metrics.json"
    if not metrics_file.is_file():  # refused before training: its line is printed
        return None
    return sweep_metric(cfg, json.loads(metrics_file.read_text()))
