"""Checking ``train.py``'s composed config before Hydra creates the run directory: a Hydra
callback (``hydra.callbacks.config_check``), so the config is composed once, and a mistake
ends in one ``error:`` line with nothing written. The pipeline checks every run again in
full (``assemble``), for every entry point; this early pass leaves out the checks that
import Lightning."""

import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gradlab.errors import ConfigError, reported_errors
from gradlab.pipeline.results import is_ddp_worker
from gradlab.pipeline.validate import check_fresh_dir, check_name, validate


def is_train_config(config: DictConfig) -> bool:
    return "trainer" in config and "model" in config


class ConfigCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if not is_train_config(config):
            return
        with reported_errors():  # Hydra turns a callback's exceptions into warnings
            validate(config, full=False)
            check_name(config.hydra.job.name, "hydra.job.name")
            explicit = any(o.startswith("hydra.run.dir=") for o in config.hydra.overrides.hydra)
            own = os.environ.get("GRADLAB_SWEEP_JOB") == "1"  # a sweep's DDP job: its own dir
            if explicit and not is_ddp_worker() and not own:
                check_writable(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if is_train_config(config):
            with reported_errors():
                validate(config, full=False)
                check_name(config.hydra.job.name, "hydra.job.name")


def check_writable(run_dir: Path) -> None:
    check_fresh_dir(run_dir, "hydra.run.dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"hydra.run.dir: cannot create {run_dir}: {e.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise ConfigError(f"hydra.run.dir: {run_dir} is not writable")
