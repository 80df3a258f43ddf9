"""Runs that survive: kill and resume, interrupts and divergence keep everything computed,
atomic checkpoints, launchers, concurrency."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    ROOT,
    cli,
    history,
    read_metrics,
    run_train,
    same,
    same_checkpoints,
    wait_cpu_seconds,
)

from gradlab import cli as commands
from gradlab.errors import DivergenceError, Interrupted

RUN = [
    "trainer.max_steps=400",
    "print_config=false",
    "optim=adam",
    "optim.lr=0.01",
    "callbacks.model_checkpoint.every_n_train_steps=100",
    "callbacks.model_checkpoint.monitor=null",
    "trainer.val_check_interval=100",
]
QUIET = ["logger=none", "callbacks.figures=null"]


def state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def same_results(a: dict, b: dict) -> None:
    """metrics.json of two runs agree on everything but the wall time."""
    a, b = dict(a), dict(b)
    a.pop("wall_time_s"), b.pop("wall_time_s")
    assert a == b


def test_sigkill_and_resume_equals_uninterrupted(tmp_path):
    whole, crashed, resumed = tmp_path / "whole", tmp_path / "crashed", tmp_path / "resumed"
    run_train(whole, *RUN, *QUIET)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    r = subprocess.run(
        [
            sys.executable,
            "train.py",
            *RUN,
            *QUIET,
            f"hydra.run.dir={crashed}",
            "+callbacks.crash._target_=helpers.CrashAtStep",
            "+callbacks.crash.step=250",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == -9  # killed by SIGKILL, after the checkpoint at step 200
    ckpt = crashed / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 200
    stale = ckpt.parent / ".gradlab-tmp.last.ckpt.999999999.x1.tmp"  # a killed writer's
    stale.write_bytes(b"half a checkpoint")
    other = ckpt.parent / ".notes.999999999.x1.tmp"  # not gradlab's: left alone
    other.write_bytes(b"someone else's file")
    run_train(resumed, *RUN, *QUIET, f"ckpt_path={ckpt}")
    # another run's directory (the crashed run's) is left as it is: a run cleans only its own
    assert stale.exists() and other.exists()
    same_results(read_metrics(whole), read_metrics(resumed))  # val/loss_best included
    sa, sb = (
        state(whole / "checkpoints" / "last.ckpt"),
        state(resumed / "checkpoints" / "last.ckpt"),
    )
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize(
    "setting, crash_at",
    [(["optim=sgd", "optim.lr=0.1"], 137), (["grads=manual", "optim=sgd"], 263), ([], 318)],
    ids=["sgd", "manual", "adam"],
)
def test_crash_and_resume_metrics_equal_uninterrupted(tmp_path, setting, crash_at):
    args = [*RUN, *QUIET, *setting]
    whole = run_train(tmp_path / "whole", *args)
    with pytest.raises(RuntimeError, match="crash at step"):
        run_train(
            tmp_path / "crashed",
            *args,
            "+callbacks.crash._target_=helpers.RaiseAtStep",
            f"+callbacks.crash.step={crash_at}",
        )
    failed = read_metrics(tmp_path / "crashed")
    assert failed["status"] == "failed" and failed["step"] == crash_at
    assert len(history(tmp_path / "crashed")) == crash_at  # the history so far is kept
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == crash_at // 100 * 100
    resumed = run_train(tmp_path / "resumed", *args, f"ckpt_path={ckpt}")
    assert resumed["val/loss_best"] == whole["val/loss_best"]
    same_results(read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "resumed"))


@pytest.mark.parametrize("signal", ["SIGINT", "SIGTERM"])
def test_interrupt_keeps_everything_and_resumes(tmp_path, signal):
    run_train(tmp_path / "whole", *RUN, *QUIET)
    stopped = tmp_path / "stopped"
    with pytest.raises(Interrupted, match=f"{signal}: run interrupted at step 250"):
        run_train(
            stopped,
            *RUN,
            "+callbacks.stop._target_=helpers.SignalAtStep",
            "+callbacks.stop.step=250",
            f"+callbacks.stop.signal={signal}",
        )
    metrics = read_metrics(stopped)
    assert metrics["status"] == "interrupted" and metrics["step"] == 250
    assert len(history(stopped)) == 250
    assert (stopped / "plots" / "loss.png").is_file() and (stopped / "error.txt").is_file()
    assert any((stopped / "tensorboard").glob("events.*"))
    ckpt = stopped / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 250  # the last update kept
    run_train(tmp_path / "resumed", *RUN, *QUIET, f"ckpt_path={ckpt}")
    same_results(read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "resumed"))


def test_a_signal_between_two_validations_adds_no_validation(tmp_path):
    """Lightning validates wherever training stops; a run stopped by SIGTERM off its
    validation schedule does not (``validates_now``): its metrics.json reports its last
    validation, and resumed, its validation history, best.ckpt and metrics are its
    uninterrupted run's (an extra validation at the stop stayed in all three), as a batched
    job's already were."""
    args = ["trainer.max_steps=400", "trainer.val_check_interval=100", "print_config=false",
            "optim=adam", "optim.lr=0.01", *QUIET]  # fmt: skip
    whole, stopped, resumed = tmp_path / "whole", tmp_path / "stopped", tmp_path / "resumed"
    run_train(whole, *args)
    with pytest.raises(Interrupted, match="SIGTERM: run interrupted at step 250"):
        run_train(stopped, *args, "+callbacks.stop._target_=helpers.SignalAtStep",
                  "+callbacks.stop.step=250", "+callbacks.stop.signal=SIGTERM")  # fmt: skip

    def saved(run, name="last"):
        return torch.load(run / "checkpoints" / f"{name}.ckpt", weights_only=False)

    validations = saved(whole)["gradlab"]["val_history"]
    assert [n for n, _ in validations] == [100, 200, 300, 400]
    assert saved(stopped)["gradlab"]["val_history"] == validations[:2]
    assert read_metrics(stopped)["val/loss"] == validations[1][1]
    run_train(resumed, *args, f"ckpt_path={stopped / 'checkpoints' / 'last.ckpt'}")
    assert saved(resumed)["gradlab"]["val_history"] == validations
    best, theirs = saved(resumed, "best"), saved(whole, "best")
    assert best["global_step"] == theirs["global_step"]
    assert same(best["state_dict"], theirs["state_dict"])
    same_results(read_metrics(whole), read_metrics(resumed))


@pytest.mark.parametrize("grads", ["autograd", "manual"])
def test_divergence_keeps_history_metrics_and_a_finite_checkpoint(tmp_path, grads):
    with pytest.raises(DivergenceError) as e:
        run_train(tmp_path, "optim.lr=1e3", f"grads={grads}", "print_config=false")
    assert "optim.lr: training diverged at step" in str(e.value) and "lr = 1000.0" in str(e.value)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "diverged" and metrics["step"] >= 2
    assert len(history(tmp_path)) == metrics["step"]
    assert (tmp_path / "plots" / "loss.png").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert len(events.Scalars("train/loss")) >= 2  # not update 0 only
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    weights = [v for k, v in ckpt["state_dict"].items() if k.startswith("model.")]
    assert weights and all(torch.isfinite(v).all() for v in weights)
    assert ckpt["global_step"] < metrics["step"]


def test_interrupted_sweep_lists_every_job(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train.py",
            "-m",
            "seed=1,2,3",
            "trainer.max_steps=300",
            *QUIET,
            "print_config=false",
            f"hydra.sweep.dir={tmp_path}",
            "+callbacks.stop._target_=helpers.SignalAtStep",
            "+callbacks.stop.step=100",
            "+callbacks.stop.signal=SIGINT",  # Ctrl-C during the first job
        ],
    )
    with pytest.raises(SystemExit) as stop:
        commands.train()
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: SIGINT")
    rows = (tmp_path / "summary.csv").read_text().strip().splitlines()
    statuses = [row.split(",") for row in rows[1:]]
    assert len(statuses) == 3
    assert "interrupted" in statuses[0] and "not started" in statuses[1]
    assert "not started" in statuses[2]


def test_resuming_a_finished_run_says_so(tmp_path):
    run_train(tmp_path / "a", "trainer.max_steps=20", *QUIET, "print_config=false")
    from gradlab.errors import ConfigError

    with pytest.raises(ConfigError, match="already finished"):
        run_train(
            tmp_path / "b",
            "trainer.max_steps=20",
            *QUIET,
            f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
        )
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["status"] == "ok"


def test_sigterm_after_the_last_update_finishes_the_run(tmp_path):
    args = ["trainer.max_steps=40", *QUIET, "print_config=false"]
    whole = run_train(tmp_path / "whole", *args)
    metrics = run_train(
        tmp_path / "term",
        *args,
        "+callbacks.stop._target_=helpers.SignalAtStep",
        "+callbacks.stop.step=40",
        "+callbacks.stop.signal=SIGTERM",
    )
    assert metrics["status"] == "ok" and metrics["test/mse"] == whole["test/mse"]
    assert not (tmp_path / "term" / "error.txt").exists()


def test_a_run_killed_before_its_results_is_completed_by_resuming_it(tmp_path):
    args = ["trainer.max_steps=40", *QUIET, "print_config=false"]
    whole = run_train(tmp_path / "whole", *args)
    run = tmp_path / "killed"
    r = subprocess.run(
        [sys.executable, "train.py", *args, f"hydra.run.dir={run}",
         "+callbacks.crash._target_=helpers.CrashAtFitEnd"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT / "tests")), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == -9
    ckpt = run / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 40
    assert not (run / "metrics.json").exists()
    # resuming it in its own directory, as a requeued job does, writes what was lost
    metrics = run_train(run, *args, f"ckpt_path={ckpt}")
    assert metrics["status"] == "ok" and metrics["step"] == 40
    assert metrics["test/mse"] == whole["test/mse"]
    assert read_metrics(run)["train/loss"] == whole["train/loss"]
    with pytest.raises(Exception, match="already finished"):  # now it is
        run_train(tmp_path / "again", *args, f"ckpt_path={ckpt}")


KILLED_WHILE_SAVING = """
import os, signal, sys, torch

class KillHere:  # pickled mid-save: the process dies with the file half written
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

path, writer = sys.argv[1], sys.argv[2]
ckpt = {"state_dict": {"w": torch.zeros(1000)}, "x": KillHere()}
if writer == "atomic":
    from gradlab.pipeline.checkpoint_io import AtomicCheckpointIO
    AtomicCheckpointIO().save_checkpoint(ckpt, path)
else:
    torch.save(ckpt, path)
"""


def old_checkpoint_survives_a_kill(tmp_path, writer: str) -> bool:
    """Save a checkpoint, then kill a process while it overwrites it: is the old one intact?"""
    import subprocess
    import sys

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
    r = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(path), writer])
    assert r.returncode == -9  # killed, not a clean failure
    try:
        w = torch.load(path, weights_only=True)["state_dict"]["w"]
    except Exception:
        return False
    return torch.equal(w, torch.ones(1000))


def test_atomic_checkpoint_survives_a_kill_while_saving(tmp_path):
    assert old_checkpoint_survives_a_kill(tmp_path, "atomic")


def test_a_plain_torch_save_loses_the_checkpoint_to_the_same_kill(tmp_path):
    # the check above can fail: writing straight to the file truncates the old checkpoint
    assert not old_checkpoint_survives_a_kill(tmp_path, "plain")


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_and_cluster_launchers(tmp_path, launcher):
    r = cli(
        "train.py",
        "-m",
        f"hydra/launcher={launcher}",
        "seed=0,1",
        "trainer.max_steps=20",
        f"hydra.sweep.dir={tmp_path}",
        "print_config=false",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for job in ("0", "1"):
        assert read_metrics(tmp_path / job)["step"] == 20
    assert (tmp_path / "summary.csv").is_file()


def test_concurrent_runs_get_their_own_directories(tmp_path):
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "train.py",
        "trainer.max_steps=10",
        f"paths.log_dir={tmp_path}",
        "print_config=false",
        "task_name=concurrent",
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(3)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    runs = list((tmp_path / "concurrent" / "runs").iterdir())
    assert len(runs) == 3
    assert all((r / "metrics.json").is_file() for r in runs)


def test_resume_in_its_own_directory_continues_it(tmp_path, monkeypatch):
    """A requeued job: the same hydra.run.dir and its own last.ckpt continue the run."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    run_train(whole, *RUN, *QUIET)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    crash = ["+callbacks.crash._target_=helpers.CrashAtStep", "+callbacks.crash.step=250"]
    argv = [*RUN, *QUIET, f"hydra.run.dir={run}"]
    r = subprocess.run(
        [sys.executable, "train.py", *argv, *crash], cwd=ROOT, env=env, capture_output=True
    )
    assert r.returncode == -9
    ckpt = run / "checkpoints" / "last.ckpt"
    stale = ckpt.parent / ".gradlab-tmp.last.ckpt.999999999.x1.tmp"  # a killed writer's
    stale.write_bytes(b"half a checkpoint")
    other = ckpt.parent / ".notes.999999999.x1.tmp"  # not gradlab's: left alone
    other.write_bytes(b"someone else's file")
    monkeypatch.setattr(sys, "argv", ["prog", *argv, f"ckpt_path={ckpt}"])
    commands.train()
    assert not stale.exists() and other.exists()  # its own directory: gradlab's removed
    other.unlink()
    same_results(read_metrics(whole), read_metrics(run))
    assert history(run) == history(whole)


def test_a_second_writer_of_a_run_directory_is_refused(tmp_path, monkeypatch, capsys):
    """Two runs into one directory: the second gets one line naming it and the holder's pid."""
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "train.py", "trainer.max_steps=100000", *QUIET, f"hydra.run.dir={run}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = run / ".gradlab.lock"
        for _ in range(600):  # until the first run holds the directory
            if lock.is_file() and lock.read_text().strip() == str(first.pid):
                break
            first.poll()
            assert first.returncode is None
            time.sleep(0.1)
        monkeypatch.setattr(sys, "argv", ["prog", *QUIET, f"hydra.run.dir={run}"])
        with pytest.raises(SystemExit) as stop:
            commands.train()
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert stop.value.code == 2
        assert last == (
            f"error: hydra.run.dir: {run.resolve()} is in use by another run (pid {first.pid}); "
            "choose another directory or wait for it to finish"
        )
    finally:
        first.kill()
        first.wait()


def test_a_sweep_directory_holds_one_sweep(tmp_path):
    """A second sweep into a sweep directory with jobs is refused before it touches them
    (Hydra would relabel them with its own overrides); one running sweep holds its lock."""
    from gradlab.pipeline.run_lock import lock_run_dir, unlock_run_dir

    sweep = tmp_path / "sweep"
    common = ["train.py", "-m", "trainer.max_steps=5", "logger=none", "callbacks=none",
              "print_config=false", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    assert cli(*common, "optim.lr=0.1,0.2").returncode == 0
    r = cli(*common, "optim.lr=0.3,0.4")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweep.dir: {sweep} holds another sweep's jobs (2 runs); choose a new "
        "directory (or leave it out for a fresh one)"
    )
    assert "optim.lr=0.1" in (sweep / "0" / ".hydra" / "overrides.yaml").read_text()
    assert read_metrics(sweep / "1")["status"] == "ok"
    busy = tmp_path / "busy"
    lock_run_dir(busy, "test")  # as a sweep that is running holds it
    try:
        r = cli(*common[:-1], f"hydra.sweep.dir={busy}", "optim.lr=0.1,0.2")
    finally:
        unlock_run_dir(busy)
    assert r.returncode == 2
    assert f"is in use by another run (pid {os.getpid()})" in r.stderr.strip().splitlines()[-1]
    assert not any(p.name.isdigit() for p in busy.iterdir())


def sigterm_batched_sweep(sweep, args, runs: int, after_s: float, gap=None) -> tuple[int, str]:
    """(exit code, stderr) of ``train.py -m sweep=batched ARGS`` sent SIGTERM ``after_s``
    CPU seconds into training its ``runs`` runs as one (and a second one ``gap`` s later)."""
    proc = subprocess.Popen(
        [sys.executable, "train.py", "-m", "sweep=batched", *args, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:  # training starts right after this line
        if f"as one run of {runs}" in line:
            break
    wait_cpu_seconds(proc, after_s)  # updates done (CPU time, not a guess of wall time)
    proc.send_signal(signal.SIGTERM)
    if gap is not None:
        time.sleep(gap)  # the spacing under test, not a wait for a state
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigterm_stops_a_batched_sweep_and_keeps_every_job(tmp_path):
    """SIGTERM during a vectorized sweep: every run stops between two updates, every job's
    directory is written (status interrupted, its history so far), the summary lists them,
    one error line, exit 130."""
    sweep = tmp_path / "sweep"
    args = ["seed=1,2,3", "trainer.max_steps=1000000", "print_config=false"]
    returncode, err = sigterm_batched_sweep(sweep, args, runs=3, after_s=3)
    assert returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: SIGTERM: sweep interrupted; 3 job(s) stopped with their")
    steps = set()
    for job in ("0", "1", "2"):
        metrics = read_metrics(sweep / job)
        assert metrics["status"] == "interrupted" and 0 < metrics["step"] < 1000000
        assert len(history(sweep / job)) == metrics["step"]
        assert (sweep / job / "error.txt").read_text().startswith("interrupted: SIGTERM")
        # its TensorBoard run named by its swept value, as a basic sweep's job is
        assert any((sweep / job / "tensorboard" / f"seed={int(job) + 1}").glob("events.*"))
        steps.add(metrics["step"])
    assert len(steps) == 1  # one update of every run per step
    rows = (sweep / "summary.csv").read_text().strip().splitlines()[1:]
    assert len(rows) == 3 and all("interrupted" in row for row in rows)


@pytest.mark.parametrize("gap", [None, 0.02, 0.15, 0.5])
def test_an_interrupted_batched_sweep_resumes_to_equal_an_uninterrupted_one(
    tmp_path, tmp_path_factory, monkeypatch, capfd, gap
):
    """SIGTERM mid-sweep (once, or twice ``gap`` s apart), then the resume command the sweep
    prints: each interrupted job continues from its last.ckpt, and every job's metrics.json
    (but wall time), history.csv and checkpoints equal those of the same sweep run without a
    stop; the interrupted jobs resume as one group. A sweep
    directory holding other jobs is refused for resuming."""
    sweep = tmp_path / "sweep"
    args = ["sweep=batched", "seed=1,2", "trainer.max_steps=6000", "print_config=false",
            "logger=none", "callbacks.figures=null"]  # fmt: skip
    returncode, err = sigterm_batched_sweep(sweep, args[1:], runs=2, after_s=2, gap=gap)
    assert returncode == 130
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1, err
    last = _last_line(err)
    assert "resume with: python train.py -m" in last and "hydra.launcher.resume=true" in last
    assert read_metrics(sweep / "0")["status"] == "interrupted"
    stop = read_metrics(sweep / "0")["step"]
    command = last.split("resume with: python train.py ", 1)[1].split()
    monkeypatch.setattr(sys, "argv", ["train.py", *command])
    capfd.readouterr()
    commands.train()
    err = capfd.readouterr()  # (file descriptors: Lightning's log handlers write to them)
    assert "jobs #0..#1 as one run of 2, resumed from their last.ckpt" in err.err  # one group
    assert "Restor" not in err.out + err.err
    same_jobs(sweep, uninterrupted_sweep(args, tmp_path_factory, monkeypatch), 2)
    if gap is not None:
        return
    other = ["train.py", "-m", *args[:-3], "trainer.max_steps=50", *args[-2:],
             f"hydra.sweep.dir={sweep}", "hydra.launcher.resume=true"]  # fmt: skip
    r = cli(*other)
    assert r.returncode == 2
    assert _last_line(r.stderr).startswith("error: hydra.launcher.resume: ")
    # each resumed job's checkpoints are its solo run's stopped at the same update and
    # resumed in its directory, the ModelCheckpoint state included (seed 1's best validation
    # is at update 1000: resumed after it, it has no current score, as Lightning leaves it)
    for job, seed in (("0", 1), ("1", 2)):
        solo = tmp_path / f"solo{job}"
        with pytest.raises(Interrupted):
            run_train(solo, f"seed={seed}", *args[2:], "+callbacks.stop._target_=helpers."
                      "SignalAtStep", f"+callbacks.stop.step={stop}",
                      "+callbacks.stop.signal=SIGTERM")  # fmt: skip
        run_train(solo, f"seed={seed}", *args[2:], f"ckpt_path={solo}/checkpoints/last.ckpt")
        same_checkpoints(sweep / job, solo, counters=False)


def same_jobs(sweep: Path, whole: Path, jobs: int) -> None:
    """Every job of a resumed sweep ends as in the uninterrupted one: metrics.json (but wall
    time), history.csv, no error.txt, and last.ckpt / best.ckpt (weights, optimizer state,
    update count, histories). Not Lightning's loop counters: the validation loop's count the
    one Lightning runs at the stop (nothing is validated there), as a solo run's do, and once
    in about 36 runs on a loaded machine the training loop's differed too (cause not found)."""
    for job in map(str, range(jobs)):
        resumed, uninterrupted = read_metrics(sweep / job), read_metrics(whole / job)
        resumed.pop("wall_time_s"), uninterrupted.pop("wall_time_s")
        assert resumed == uninterrupted and resumed["status"] == "ok", job
        assert history(sweep / job) == history(whole / job)
        assert not (sweep / job / "error.txt").exists()
        for name in ("last", "best"):
            mine, theirs = (torch.load(d / job / "checkpoints" / f"{name}.ckpt",
                                       weights_only=False) for d in (sweep, whole))  # fmt: skip
            mine["gradlab"].pop("config"), theirs["gradlab"].pop("config")
            assert mine["global_step"] == theirs["global_step"], (job, name)
            for key in ("state_dict", "optimizer_states", "gradlab"):
                assert same(mine[key], theirs[key]), (job, name, key)


@pytest.mark.parametrize(
    ("lrs", "scheduler"),
    [("0.01", "none"), ("0.005,0.01", "none"), ("0.01", "cosine"), ("0.005,0.01", "cosine")],
)
def test_an_inexact_batched_group_resumes_to_equal_an_uninterrupted_one(
    tmp_path, tmp_path_factory, monkeypatch, lrs, scheduler
):
    """hydra.launcher.exact=false, Adam: one optimizer over the stacked runs (one rate) or
    per-run rates (two): the interrupted runs resume together from their last.ckpt files
    (each run's moments stacked back, the shared step count) to the uninterrupted sweep's
    files bit for bit. Scheduled: each rate's schedule stacked back too (two rates train
    exact: a param group each)."""
    sweep, runs = tmp_path / "sweep", 2 * len(lrs.split(","))
    args = ["sweep=batched", "optim=adam", f"optim.lr={lrs}", "seed=1,2",
            "hydra.launcher.exact=false", "trainer.max_steps=6000", "print_config=false",
            "logger=none", "callbacks.figures=null", f"scheduler={scheduler}"]  # fmt: skip
    returncode, _ = sigterm_batched_sweep(sweep, args[1:], runs=runs, after_s=2)
    assert returncode == 130 and read_metrics(sweep / "0")["status"] == "interrupted"
    resume = [*args, f"hydra.sweep.dir={sweep}", "hydra.launcher.resume=true"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *resume])
    commands.train()
    same_jobs(sweep, uninterrupted_sweep(args, tmp_path_factory, monkeypatch), runs)


def test_a_resumed_batched_group_logs_from_where_it_resumed(
    tmp_path, tmp_path_factory, monkeypatch
):
    """logger=tensorboard: a resumed group's jobs log only the updates after the resume
    (their TensorBoard runs hold what came before), so each scalar after the stop is logged
    once, with the uninterrupted sweep's value."""
    from test_dashboards import scalars

    sweep = tmp_path / "sweep"
    args = ["sweep=batched", "seed=1,2", "trainer.max_steps=6000", "print_config=false",
            "logger=tensorboard", "callbacks.figures=null"]  # fmt: skip
    returncode, _ = sigterm_batched_sweep(sweep, args[1:], runs=2, after_s=2)
    assert returncode == 130
    stop = read_metrics(sweep / "0")["step"]
    resume = [*args, f"hydra.sweep.dir={sweep}", "hydra.launcher.resume=true"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *resume])
    commands.train()
    whole = uninterrupted_sweep(args, tmp_path_factory, monkeypatch)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for job in ("0", "1"):
        mine, theirs = scalars(sweep / job / "tensorboard"), scalars(whole / job / "tensorboard")
        steps: dict[str, list[int]] = {}  # every event of every file, none merged
        for events in (sweep / job / "tensorboard").rglob("events.*"):
            acc = EventAccumulator(str(events)).Reload()
            for tag in acc.Tags()["scalars"]:
                steps.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
        for tag in ("train/loss", "val/loss", "val/loss_best", "lr-SGD"):
            after = [(n, v) for n, v in mine[tag] if n >= stop]
            assert after == [(n, v) for n, v in theirs[tag] if n >= stop] and after, (job, tag)
            assert len(set(steps[tag])) == len(steps[tag]), (job, tag)  # each step once


UNINTERRUPTED: dict[tuple, Path] = {}  # the same sweep run once per worker, without a stop


def uninterrupted_sweep(args: list[str], tmp_path_factory, monkeypatch) -> Path:
    key = tuple(args)
    if key not in UNINTERRUPTED:
        out = tmp_path_factory.mktemp("uninterrupted")
        monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={out}"])
        commands.train()
        UNINTERRUPTED[key] = out
    return UNINTERRUPTED[key]


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_a_full_disk_ends_in_one_line_naming_the_run_directory(tmp_path):
    """Files that cannot be written (here a file-size limit: EFBIG, as ENOSPC on a full disk)
    end in one ``error:`` line naming the directory and its key, no traceback, and what fit
    is kept (history.csv, metrics.json with status failed)."""
    import resource

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", "trainer.max_steps=300", "print_config=false",
           f"hydra.run.dir={out}"]  # fmt: skip
    r = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=small_files
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    line = _last_line(r.stderr)
    assert line.startswith(f"error: {out}") and "File too large" in line, line
    assert "paths.output_dir" in line
    assert read_metrics(out)["status"] == "failed"
    assert len(history(out)) == 300


def test_a_removed_run_directory_ends_in_one_line(tmp_path):
    """The run directory deleted while training: one line naming the file the run could not
    write and the key that chose the directory; no traceback from a library thread."""
    import shutil

    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", "trainer.max_steps=200000", "print_config=false",
           "trainer.log_every_n_steps=10", f"hydra.run.dir={out}"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "last.ckpt").is_file():  # saved when training starts
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    wait_cpu_seconds(proc, 0.5)  # some updates done
    gone = tmp_path / "gone"
    out.rename(gone)  # removed at once: a recursive delete races the run's own writes
    shutil.rmtree(gone)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    line = _last_line(stderr)
    assert line.startswith(f"error: {out}") and "paths.output_dir" in line, line


def test_a_run_directory_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    r = cli("train.py", "trainer.max_steps=5", f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    line = _last_line(r.stderr)
    assert line.startswith("error: ") and str(tmp_path / "file") in line, line
