"""A run or sweep directory with symbolic links in it (copied or downloaded): gradlab never
writes through a link it did not make. Each case plants a link to a marker file (or
directory) outside the run, runs the command, and checks that the marker is unchanged and
the command ended in one ``error:`` line naming the link."""

import hashlib
import os
import sys

import pytest
from conftest import cli

from gradlab import cli as commands

QUIET = ["logger=none", "callbacks.figures=null", "print_config=false"]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text("the user's own file\n")
    return path


def _finished_run(tmp_path, monkeypatch, steps: int = 20):
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["train.py", f"trainer.max_steps={steps}", *QUIET,
                                      f"hydra.run.dir={run}"])  # fmt: skip
    commands.train()
    return run


def _last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("name", ["metrics.json", "history.csv"])
def test_a_linked_result_file_is_not_written_through(tmp_path, monkeypatch, capsys, marker, name):
    """Resuming in place (``ckpt_path=<run>/checkpoints/last.ckpt``) into a directory where a
    result file is a link: refused with one line; the link's target unchanged."""
    run = _finished_run(tmp_path, monkeypatch)
    before = digest(marker)
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(marker)
    last = run / "checkpoints" / "last.ckpt"
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.max_steps=40", *QUIET,
                                      f"hydra.run.dir={run}", f"ckpt_path={last}"])  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        commands.train()
    assert stop.value.code != 0
    assert digest(marker) == before
    line = _last_error(capsys)
    assert line.startswith("error: ") and "symbolic link" in line, line


def test_a_linked_old_error_file_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys, marker
):
    run = _finished_run(tmp_path, monkeypatch)
    before, files = digest(marker), digest_tree(run)
    (run / "error.txt").symlink_to(marker)
    last = run / "checkpoints" / "last.ckpt"
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.max_steps=40", *QUIET,
                                      f"hydra.run.dir={run}", f"ckpt_path={last}"])  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        commands.train()
    assert stop.value.code == 2
    assert digest(marker) == before and digest_tree(run) == files  # .hydra/ included
    assert _last_error(capsys).startswith(
        f"error: hydra.run.dir: {run / 'error.txt'} is a symbolic"
    )


def digest_tree(directory) -> dict:
    return {
        str(p.relative_to(directory)): digest(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != ".gradlab.lock"
    }


def test_a_linked_lock_file_is_refused(tmp_path, monkeypatch, capsys, marker):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".gradlab.lock").symlink_to(marker)
    before = digest(marker)
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.max_steps=5", *QUIET,
                                      f"hydra.run.dir={run}"])  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        commands.train()
    assert stop.value.code == 2
    assert digest(marker) == before
    line = _last_error(capsys)
    assert line == (
        f"error: hydra.run.dir: {run / '.gradlab.lock'} is a symbolic link; gradlab writes a "
        "run's files only in its own directory, never through a link (remove it, or choose "
        "another directory)"
    )


def test_a_linked_checkpoint_directory_is_not_written_into(tmp_path, monkeypatch, capsys):
    """``checkpoints/`` linked to another directory: nothing is written there, and a
    temporary file of gradlab's naming planted there is not deleted."""
    run = _finished_run(tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    (run / "checkpoints").rename(elsewhere)
    (run / "checkpoints").symlink_to(elsewhere)
    planted = elsewhere / ".gradlab-tmp.last.ckpt.999999999.abc.tmp"  # a dead pid's name
    planted.write_text("not gradlab's")
    before = {p.name: digest(p) for p in elsewhere.iterdir()}
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.max_steps=40", *QUIET,
                                      f"hydra.run.dir={run}",
                                      f"ckpt_path={elsewhere / 'last.ckpt'}"])  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        commands.train()
    assert stop.value.code != 0
    assert {p.name: digest(p) for p in elsewhere.iterdir()} == before
    line = _last_error(capsys)
    assert line.startswith(f"error: hydra.run.dir: {run / 'checkpoints'} is a symbolic link"), line


@pytest.mark.parametrize("name", ["summary.md", "summary.csv"])
def test_summarize_does_not_write_through_a_linked_summary(tmp_path, marker, name):
    sweep = tmp_path / "sweep"
    r = cli("train.py", "-m", "seed=1,2", "trainer.max_steps=5", *QUIET,
            f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (sweep / name).unlink()
    (sweep / name).symlink_to(marker)
    before = digest(marker)
    r = cli("-m", "gradlab", "summarize", str(sweep))
    assert r.returncode != 0
    assert digest(marker) == before
    line = r.stderr.strip().splitlines()[-1]
    assert line == (
        f"error: {sweep / name}: is a symbolic link; gradlab writes a run's files only in its "
        "own directory, never through a link (remove the link, or choose another directory)"
    )


def test_summarize_refuses_a_single_runs_directory(tmp_path, monkeypatch):
    run = _finished_run(tmp_path, monkeypatch, steps=5)
    files = sorted(os.listdir(run))
    r = cli("-m", "gradlab", "summarize", str(run))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {run}: a single run's directory, not a sweep; give the multirun directory "
        "that holds the jobs (nothing was written)"
    )
    assert sorted(os.listdir(run)) == files
