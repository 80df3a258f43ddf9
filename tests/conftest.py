"""Compose configs in-process (as train.py does) and run them into tmp directories."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradlab.pipeline.compose import compose_config, setup_hydra

ROOT = Path(__file__).resolve().parents[1]
setup_hydra()


def pytest_configure(config):
    """gradlab filters a few library warnings by exact text when it is imported; pytest drops
    filters set while it collects, so the same list goes into pytest's own filters."""
    from gradlab.pipeline.library_output import LIBRARY_WARNINGS

    for category, text in LIBRARY_WARNINGS:
        assert ":" not in text  # pytest's filter syntax splits on ':'
        name = category.__name__  # a builtin category by its name, others by their module's
        if category.__module__ != "builtins":
            name = f"{category.__module__}.{name}"
        config.addinivalue_line("filterwarnings", f"ignore:{text}:{name}")


@pytest.fixture(autouse=True)
def _float32_default():
    """A run with dtype=float64 changes torch's default dtype: restore it for the next test."""
    yield
    torch.set_default_dtype(torch.float32)


def make_cfg(tmp_path: Path, *overrides: str, config_name: str = "config"):
    return compose_config(tmp_path, *overrides, config_name=config_name)


def run_train(tmp_path: Path, *overrides: str) -> dict:
    from gradlab.pipeline.run import train

    return train(make_cfg(tmp_path, *overrides))[0]


def history(run_dir: Path) -> list[dict]:
    lines = (Path(run_dir) / "history.csv").read_text().strip().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_cpu_seconds(proc: subprocess.Popen, seconds: float, timeout: float = 300) -> None:
    """Wait until the running ``proc`` has used ``seconds`` more of CPU time (user + system,
    from /proc): a state, not a wall-clock guess, so a busy machine only makes the wait
    longer. Fails at once if the process ends first."""
    import time

    start, deadline = cpu_seconds(proc.pid), time.monotonic() + timeout
    while cpu_seconds(proc.pid) - start < seconds:
        assert proc.poll() is None, f"process {proc.pid} ended (exit {proc.returncode})"
        assert time.monotonic() < deadline, f"process {proc.pid} did not run {seconds} s of CPU"
        time.sleep(0.05)  # polling the state above, not a fixed wait


def same(a, b) -> bool:
    """Equal nested checkpoint contents: tensors bit for bit, the rest ``==``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if torch.is_tensor(a) and torch.is_tensor(b):
        return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def same_checkpoints(job: Path, solo: Path, names=("last.ckpt", "best.ckpt"), counters=True):
    """A batched job's checkpoints (``names``) hold its solo run's, key for key: weights,
    optimizer state, histories, the ModelCheckpoint state (but its config and directory),
    Lightning's loop counters and epoch (``counters``; see ``test_survive.same_jobs``)."""
    for name in names:
        mine, theirs = (torch.load(d / "checkpoints" / name, weights_only=False)
                        for d in (job, solo))  # fmt: skip
        mine["gradlab"].pop("config"), theirs["gradlab"].pop("config")
        states = [str(c.pop("callbacks")).replace(str(d), "JOB")
                  for c, d in ((mine, job), (theirs, solo))]  # fmt: skip
        assert states[0] == states[1], (job, name)
        assert mine.keys() == theirs.keys(), (job, name)
        for key in mine if counters else mine.keys() - {"loops", "epoch"}:
            assert same(mine[key], theirs[key]), (job, name, key)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


@pytest.fixture
def run(tmp_path):
    def _run(*overrides):
        return run_train(tmp_path, *overrides), tmp_path

    return _run
