"""Sweeps are expanded by Hydra's own override parser (with the app's config loader), so the
forms Hydra accepts work with the basic and the batched launcher alike; sweeps whose jobs
would share a directory are refused before any job starts."""

import csv
import sys

import pytest

from gradlab import cli as commands

QUIET = ["trainer.max_steps=5", "logger=none", "callbacks.figures=null", "print_config=false"]
LAUNCHERS = {"basic": [], "batched": ["sweep=batched"]}


def sweep(monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *argv, *QUIET])
    commands.train()


def summary(sweep_dir) -> list[dict]:
    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_glob_sweep_over_experiments_runs_with_either_launcher(tmp_path, monkeypatch, launcher):
    out = tmp_path / "sweep"
    sweep(monkeypatch, *LAUNCHERS[launcher], "experiment=glob(twolayer_*)", "seed=1,2",
          f"hydra.sweep.dir={out}")  # fmt: skip
    rows = summary(out)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    experiments = sorted({r["experiment"] for r in rows})
    assert experiments == ["twolayer_adam", "twolayer_manual", "twolayer_nn"]


FORMS = ["seed=range(1,3)", "seed=choice(1,2)", "optim.lr=tag(lr,choice(0.1,0.2))",
         "optim.lr=sort(0.2,0.1)"]  # fmt: skip


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("form", FORMS)
def test_hydras_sweep_forms_run_with_either_launcher(tmp_path, monkeypatch, launcher, form):
    out = tmp_path / "sweep"
    sweep(monkeypatch, *LAUNCHERS[launcher], form, f"hydra.sweep.dir={out}")
    rows = summary(out)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)


def refused(monkeypatch, capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        sweep(monkeypatch, *argv)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_jobs_sharing_a_directory_are_refused_before_any_starts(
    tmp_path, monkeypatch, capsys, launcher
):
    out = tmp_path / "sweep"
    last = refused(monkeypatch, capsys, *LAUNCHERS[launcher], "seed=1,2",
                   "hydra.sweep.subdir=same", f"hydra.sweep.dir={out}")  # fmt: skip
    assert last.startswith("error: hydra.sweep.subdir: 'same' names jobs #0 and #1 alike")
    assert not (out / "same").exists()
    last = refused(monkeypatch, capsys, *LAUNCHERS[launcher], "seed=1,2", "optim.lr=0.1,0.2",
                   "hydra.sweep.subdir=x_${seed}", f"hydra.sweep.dir={out}")  # fmt: skip
    assert last.startswith("error: hydra.sweep.subdir: 'x_${seed}' names jobs #0 and #1 alike")
    assert not out.exists() or not any(out.iterdir())


def test_an_interval_in_a_grid_sweep_names_its_key(tmp_path, monkeypatch, capsys):
    last = refused(monkeypatch, capsys, "optim.lr=interval(0.1,0.2)",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}")  # fmt: skip
    assert last.startswith("error: optim.lr: interval(0.1,0.2) cannot be listed as a grid")
