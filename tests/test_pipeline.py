"""One run pipeline: every entry point (train.py, gradlab.run, the batched launcher, eval.py)
gives the same data, weights and metrics for the same config; eval.py restores any
experiment's checkpoint and builds nothing a checkpoint names but gradlab's own classes;
gradlab.run leaves the process as it found it; sweeps run over experiments without a
validation set."""

import functools
import logging
import os
import random
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import history, make_cfg, read_metrics, run_train

import gradlab
from gradlab import cli as commands
from gradlab.pipeline.compose import CONFIG_DIR
from gradlab.pipeline.run import draw

COMMON = ["trainer.max_steps=30", "print_config=false", "logger=none", "callbacks.figures=null"]
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def run_command(entry, monkeypatch, *argv) -> int:
    """``entry`` (a ``gradlab.cli`` command) in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    try:
        entry()
    except SystemExit as stop:
        return stop.code or 0
    return 0


@pytest.mark.numerics
def test_every_entry_point_gives_the_same_run(tmp_path, monkeypatch):
    assert (
        run_command(commands.train, monkeypatch, *COMMON, f"hydra.run.dir={tmp_path / 'cli'}") == 0
    )
    api = gradlab.run(*COMMON, output_dir=tmp_path / "api", quiet=True)
    sweep = ["sweep=batched", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_command(commands.train, monkeypatch, "-m", *COMMON, *sweep) == 0
    ckpt = tmp_path / "cli" / "checkpoints" / "last.ckpt"
    evaluate = ["ckpt_path=" + str(ckpt), f"hydra.run.dir={tmp_path / 'eval'}"]
    assert run_command(commands.evaluate, monkeypatch, *evaluate) == 0

    # the same data: the pipeline's one seed path
    data, model = draw(make_cfg(tmp_path / "x", *COMMON))
    for split in ("train", "val", "test"):
        for mine, theirs in zip(getattr(data, split), getattr(api.data, split), strict=True):
            assert torch.equal(mine, theirs), split
    # the same weights after training: train.py's checkpoint and gradlab.run's module
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    for name, value in api.module.state_dict().items():
        if name.startswith("model."):
            assert torch.equal(saved[name], value), name
    # the same numbers
    solo = read_metrics(tmp_path / "cli")
    skip = {"wall_time_s"}
    assert {k: v for k, v in solo.items() if k not in skip} == {
        k: v for k, v in api.metrics.items() if k not in skip
    }
    batched = read_metrics(tmp_path / "sweep" / "0")  # seed=1: the solo run's seed
    # every key, validation and test metrics included (wall time: its share of the group's)
    assert {k: v for k, v in batched.items() if k not in skip} == {
        k: v for k, v in solo.items() if k not in skip
    }
    assert history(tmp_path / "sweep" / "0") == history(tmp_path / "cli")
    evaluated = read_metrics(tmp_path / "eval")
    for key in ("test/loss", "test/mse", "test/r2", "step"):
        assert evaluated[key] == solo[key], key


def short(name: str) -> list[str]:
    """A 3-update run of experiment ``name`` that keeps its checkpoint and draws nothing."""
    quiet = ["print_config=false", "logger=none", "callbacks.figures=null"]
    return [f"experiment={name}", "trainer.max_steps=3", *quiet, "callbacks.dead_units=null"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_eval_reproduces_every_experiment(tmp_path, monkeypatch, name):
    overrides = short(name)
    metrics = run_train(tmp_path / "run", *overrides)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    argv = [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}"]
    assert run_command(commands.evaluate, monkeypatch, *argv) == 0
    evaluated = read_metrics(tmp_path / "eval")
    tested = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert tested or name == "relu_dies", metrics  # one training point: no test set
    assert evaluated["step"] == metrics["step"]
    assert {k: evaluated[k] for k in tested} == tested


# ------------------------------------------------------------------ checkpoint safety
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("safe")
    run_train(root, *COMMON)
    return torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


class Payload:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile(target: str, tmp_path) -> dict:
    marker = tmp_path / "marker"
    if target == "torch.load":
        pickled = tmp_path / "payload.pt"
        torch.save(Payload(marker), pickled)
        return {"_target_": target, "f": str(pickled), "weights_only": False}
    if target == "builtins.open":
        return {"_target_": target, "file": str(marker), "mode": "w"}
    return {"_target_": target, "command": f"touch {marker}"}


@pytest.mark.parametrize("group", ["data", "model", "optim"])
@pytest.mark.parametrize("target", ["torch.load", "builtins.open", "os.system"])
def test_a_checkpoint_naming_code_is_refused(
    checkpoint, tmp_path, monkeypatch, capsys, group, target
):
    ckpt = {**checkpoint, "gradlab": {**checkpoint["gradlab"]}}
    ckpt["gradlab"]["config"] = {**ckpt["gradlab"]["config"], group: hostile(target, tmp_path)}
    if group in ("model", "optim"):  # the module's own hyperparameters name it too
        hparams = dict(ckpt["hyper_parameters"])
        hparams[group] = hostile(target, tmp_path)
        ckpt["hyper_parameters"] = hparams
    path = tmp_path / "hostile.ckpt"
    torch.save(ckpt, path)
    argv = [f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'eval'}"]
    code = run_command(commands.evaluate, monkeypatch, *argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ckpt_path:") and target in last, last
    assert not (tmp_path / "marker").exists()  # nothing ran
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_a_trusted_class_with_a_nested_target_is_refused(checkpoint, tmp_path, monkeypatch, capsys):
    ckpt = {**checkpoint, "gradlab": {**checkpoint["gradlab"]}}
    config = dict(ckpt["gradlab"]["config"])
    config["data"] = {**config["data"], "n_train": hostile("builtins.open", tmp_path)}
    ckpt["gradlab"]["config"] = config
    torch.save(ckpt, tmp_path / "nested.ckpt")
    argv = [f"ckpt_path={tmp_path / 'nested.ckpt'}", f"hydra.run.dir={tmp_path / 'eval'}"]
    assert run_command(commands.evaluate, monkeypatch, *argv) == 2
    assert "nested _target_" in capsys.readouterr().err
    assert not (tmp_path / "marker").exists()


def test_load_from_checkpoint_restores_the_module(checkpoint, tmp_path):
    from gradlab.module import GradLabModule

    torch.save(checkpoint, tmp_path / "last.ckpt")
    module = GradLabModule.load_from_checkpoint(tmp_path / "last.ckpt", weights_only=True)
    assert module.updates == checkpoint["gradlab"]["updates"]
    for name, value in checkpoint["state_dict"].items():
        assert torch.equal(module.state_dict()[name], value), name


# ------------------------------------------------------------------ process state
def process_state() -> dict:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    return {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "dtype": torch.get_default_dtype(),
        "threads": torch.get_num_threads(),
        "environ": dict(os.environ),
        "random": random.getstate(),
        "numpy": np.random.get_state()[1].tolist(),
        "torch": torch.random.get_rng_state().tolist(),
        "hydra": (GlobalHydra.instance().is_initialized(), HydraConfig.initialized()),
        "loggers": {lg.name: (lg.level, len(lg.handlers), lg.propagate) for lg in loggers},
        "warnings": list(warnings.filters),
    }


def test_run_leaves_the_process_as_it_found_it(tmp_path, capfd):
    gradlab.run(*COMMON, output_dir=tmp_path / "warm", quiet=True)  # imports and first loggers
    capfd.readouterr()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    torch.set_num_threads(2)
    before = process_state()
    gradlab.run(*COMMON, "logger=tensorboard", output_dir=tmp_path / "one", quiet=True)
    r = gradlab.run(*COMMON, "dtype=float64", output_dir=tmp_path / "two", quiet=True)
    after = process_state()
    before["loggers"] = {k: v for k, v in before["loggers"].items()}
    after["loggers"] = {k: v for k, v in after["loggers"].items() if k in before["loggers"]}
    assert after == before
    assert r.metrics["status"] == "ok"
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # quiet: nothing printed


# ------------------------------------------------------------------ sweeps without validation
@functools.cache
def without_validation() -> tuple[str, ...]:
    """The experiments whose data have no validation set (each experiment's data drawn once)."""
    names = []
    for name in EXPERIMENTS:
        cfg = make_cfg(Path(tempfile.gettempdir()), f"experiment={name}")
        with torch.random.fork_rng():
            torch.set_default_dtype(getattr(torch, cfg.dtype))
            data, _ = draw(cfg)
        if data.val is None:
            names.append(name)
    torch.set_default_dtype(torch.float32)
    return tuple(names)


def test_the_experiments_without_validation_are_found():
    assert {"quadratic", "quadratic_sgd", "relu_dies"} <= set(without_validation())


@pytest.mark.parametrize("name", ["quadratic", "quadratic_sgd", "relu_dies"])
def test_a_sweep_over_an_experiment_without_validation_runs(tmp_path, monkeypatch, capsys, name):
    assert name in without_validation()
    sweep = ["-m", f"experiment={name}", "optim.lr=0.1,0.3", f"hydra.sweep.dir={tmp_path}"]
    code = run_command(commands.train, monkeypatch, *sweep, "print_config=false", "logger=none")
    out = capsys.readouterr().out
    assert code == 0
    assert "the sweeper gets train/loss (fallback_metric)" in out
    for job in ("0", "1"):
        assert read_metrics(tmp_path / job)["status"] == "ok"


def test_a_summed_loss_says_what_it_sums_and_gives_the_per_point_number(tmp_path, capsys):
    """experiment=legendre minimizes a sum of squares: the summary says each loss line is a
    sum (over how many points), and metrics.json holds train/mse = train/loss / n beside it,
    the per-point number that val/mse and test/mse are."""
    metrics = run_train(tmp_path / "sse", "experiment=legendre", "trainer.max_steps=20",
                        "print_config=false")  # fmt: skip
    assert metrics["train/mse"] == metrics["train/loss"] / 2000
    lines = capsys.readouterr().out.splitlines()
    train = next(line for line in lines if line.strip().startswith("train/loss"))
    test = next(line for line in lines if line.strip().startswith("test/loss"))
    assert train.endswith("(sum over 2000 points)") and test.endswith("(sum over 500 points)")
    plain = run_train(tmp_path / "mse", "trainer.max_steps=20", "print_config=false")
    assert "train/mse" not in plain  # a mean loss is already per point
    assert "sum over" not in capsys.readouterr().out


def test_a_batched_sum_of_squares_job_is_its_solo_run(tmp_path, monkeypatch):
    """train/mse of a loss=sse job is the same from a batched group as from its solo run."""
    args = ["loss=sse", "optim.lr=0.001,0.002", "trainer.max_steps=30", "print_config=false",
            "logger=none"]  # fmt: skip
    for name, launcher in (("basic", []), ("batched", ["sweep=batched"])):
        monkeypatch.setattr(sys, "argv", ["train.py", "-m", *launcher, *args,
                                          f"hydra.sweep.dir={tmp_path}/{name}"])  # fmt: skip
        commands.train()
    for job in ("0", "1"):
        mine, theirs = (read_metrics(tmp_path / d / job) for d in ("batched", "basic"))
        mine.pop("wall_time_s"), theirs.pop("wall_time_s")
        assert mine == theirs and "train/mse" in mine
