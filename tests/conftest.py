"""Compose configs in-process (as train.py does) and run them into tmp directories."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from gradlab.config import CONFIG_DIR, setup_resolvers

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore")
setup_resolvers()


def make_cfg(tmp_path: Path, *overrides: str, config_name: str = "config"):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        cfg.paths.root_dir = str(ROOT)
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.print_config = False
        if "callbacks" in cfg and cfg.callbacks and "progress_bar" in cfg.callbacks:
            cfg.callbacks.progress_bar.refresh_rate = 0
    HydraConfig().set_config(cfg)
    return cfg


def run_train(tmp_path: Path, *overrides: str) -> dict:
    from gradlab.train import train

    return train(make_cfg(tmp_path, *overrides))


def history(run_dir: Path) -> list[dict]:
    lines = (Path(run_dir) / "history.csv").read_text().strip().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


@pytest.fixture
def run(tmp_path):
    def _run(*overrides):
        return run_train(tmp_path, *overrides), tmp_path

    return _run
