"""One run, one directory: a new run, an eval or a configured path inside another run's
directory (or at /) is refused with one line, and every file of that run is unchanged
(hashes before and after). Trainer options gradlab does not honour are refused."""

import hashlib
import sys

import pytest

from gradlab import cli as commands

QUIET = ["logger=none", "callbacks.figures=null", "print_config=false"]


def hashes(directory) -> dict:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("other") / "run"
    argv = ["train.py", "trainer.max_steps=20", *QUIET, f"hydra.run.dir={run}"]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", argv)
    try:
        commands.train()
    finally:
        mp.undo()
    return run


def refused(monkeypatch, capsys, entry, *argv) -> str:
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as stop:
        entry()
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "override, line",
    [
        ("hydra.run.dir={run}/checkpoints", "hydra.run.dir: {run}/checkpoints is inside the run "
         "directory {run}; a run writes only in a directory of its own (choose one outside it)"),
        ("hydra.run.dir={run}/plots/new", "hydra.run.dir: {run}/plots/new is inside the run "
         "directory {run}"),
        ("hydra.output_subdir={run}/.hydra", "hydra.output_subdir: '{run}/.hydra' leaves the run's "
         "directory; give a name inside it (no absolute path, no '..')"),
        ("callbacks.model_checkpoint.dirpath={run}/checkpoints",
         "callbacks.model_checkpoint.dirpath: {run}/checkpoints is outside the run directory"),
        ("+logger.csv._target_=lightning.pytorch.loggers.CSVLogger", None),
    ],
)  # fmt: skip
def test_a_run_into_another_runs_directory_is_refused(
    tmp_path, monkeypatch, capsys, other_run, override, line
):
    if line is None:  # a logger writing into the other run
        argv = [override, f"+logger.csv.save_dir={other_run}", f"hydra.run.dir={tmp_path / 'x'}"]
        line = f"logger.csv.save_dir: {other_run} is outside the run directory"
    else:
        argv = [override.format(run=other_run)]
        line = line.format(run=other_run)
        if not override.startswith("hydra.run.dir"):
            argv.append(f"hydra.run.dir={tmp_path / 'x'}")
    before = hashes(other_run)
    last = refused(monkeypatch, capsys, commands.train, "trainer.max_steps=5", *QUIET, *argv)
    assert last.startswith(f"error: {line}"), last
    assert hashes(other_run) == before


def test_a_run_at_the_filesystems_root_is_refused(monkeypatch, capsys):
    last = refused(monkeypatch, capsys, commands.train, "trainer.max_steps=5", "hydra.run.dir=/")
    assert last == "error: hydra.run.dir: / is the filesystem's root; give a directory of its own"


@pytest.mark.parametrize("where", ["", "/plots"])
def test_eval_into_a_training_runs_directory_changes_none_of_its_files(
    monkeypatch, capsys, other_run, where
):
    before = hashes(other_run)
    ckpt = other_run / "checkpoints" / "last.ckpt"
    last = refused(monkeypatch, capsys, commands.evaluate, f"ckpt_path={ckpt}",
                   f"hydra.run.dir={other_run}{where}")  # fmt: skip
    assert last.startswith(f"error: hydra.run.dir: {other_run}{where} ")
    assert hashes(other_run) == before


@pytest.mark.parametrize(
    "override",
    ["trainer.max_epochs=0", "+trainer.limit_train_batches=0", "+trainer.min_steps=100000",
     "+trainer.gradient_clip_val=-1", "+trainer.accumulate_grad_batches=4"],
)  # fmt: skip
def test_trainer_options_gradlab_does_not_honour_are_refused(
    tmp_path, monkeypatch, capsys, override
):
    key = override.lstrip("+").split("=")[0]
    last = refused(monkeypatch, capsys, commands.train, override, *QUIET,
                   f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert last.startswith(f"error: {key}: ") and "is not honoured" in last, last
    assert not (tmp_path / "run").exists()  # refused before Hydra made the directory


def test_resuming_with_another_activation_is_refused(monkeypatch, capsys, other_run):
    ckpt = other_run / "checkpoints" / "last.ckpt"
    before = hashes(other_run)
    argv = [f"hydra.run.dir={other_run}", f"ckpt_path={ckpt}", "model.activation=relu"]
    last = refused(monkeypatch, capsys, commands.train, "trainer.max_steps=40", *QUIET, *argv)
    assert last.startswith("error: model.activation: the checkpoint was written with tanh, "
                           "this run has relu")  # fmt: skip
    assert hashes(other_run) == before  # .hydra/ included: refused before Hydra writes it


def test_a_directory_of_the_users_own_files_is_refused_for_a_new_run(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    last = refused(monkeypatch, capsys, commands.train, "trainer.max_steps=5", *QUIET,
                   f"hydra.run.dir={mine}")  # fmt: skip
    assert last == (
        f"error: hydra.run.dir: {mine} holds files gradlab did not write (1, e.g. notes.txt); "
        "give a new or empty directory for the run"
    )
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_eval_refuses_a_key_it_does_not_read_before_writing(
    tmp_path, monkeypatch, capsys, other_run
):
    out = tmp_path / "eval"
    ckpt = other_run / "checkpoints" / "last.ckpt"
    last = refused(monkeypatch, capsys, commands.evaluate, f"ckpt_path={ckpt}", "+ckpt_pat=1",
                   f"hydra.run.dir={out}")  # fmt: skip
    assert last.startswith("error: ckpt_pat: eval.py does not read this key; did you mean")
    assert not out.exists()


def test_gradlab_run_names_its_directory_as_train_py_does(tmp_path, monkeypatch):
    import gradlab

    monkeypatch.chdir(tmp_path)  # logs/ of this directory (no project above it)
    run = gradlab.run("trainer.max_steps=5", *QUIET, "task_name=mine", quiet=True)
    assert run.dir.parent == (tmp_path / "logs" / "mine" / "runs").resolve()
    named = tmp_path / "named"
    assert (
        gradlab.run("trainer.max_steps=5", *QUIET, f"hydra.run.dir={named}", quiet=True).dir
        == named
    )
    with pytest.raises(gradlab.ConfigError, match="name two directories for one run"):
        gradlab.run(f"hydra.run.dir={named}", output_dir=tmp_path / "other", quiet=True)


def test_eval_checks_the_config_it_reads_from_a_checkpoint(
    tmp_path, monkeypatch, capsys, other_run
):
    """The config stored in a checkpoint goes through the run's value checks and memory
    estimate before anything is drawn."""
    import torch

    ckpt = torch.load(other_run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["gradlab"]["config"]["restarts"] = 10**12  # no machine holds these restarts
    forged = tmp_path / "forged.ckpt"
    torch.save(ckpt, forged)
    last = refused(monkeypatch, capsys, commands.evaluate, f"ckpt_path={forged}",
                   f"hydra.run.dir={tmp_path / 'eval'}")  # fmt: skip
    assert last.startswith(f"error: ckpt_path: {forged}: its config: model.sizes x restarts: ")


def test_a_sweep_into_a_directory_of_the_users_files_or_into_a_run_is_refused(
    tmp_path, monkeypatch, capsys, other_run
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    before = hashes(other_run)
    for where, line in [
        (mine, f"hydra.sweep.dir: {mine} holds files gradlab did not write (1, e.g. notes.txt)"),
        (other_run / "plots", f"hydra.sweep.dir: {other_run / 'plots'} is inside the run "
                              f"directory {other_run}"),
    ]:  # fmt: skip
        last = refused(monkeypatch, capsys, commands.train, "-m", "seed=1,2",
                       "trainer.max_steps=5", *QUIET, f"hydra.sweep.dir={where}")  # fmt: skip
        assert last.startswith(f"error: {line}"), last
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert hashes(other_run) == before
