"""Sweeps past one process: the batched launcher's groups as submitit jobs, on this machine
(``executor=submitit_local``) and on a real one-node SLURM (tests marked ``slurm``: they need
``bash scripts/slurm-local.sh up``, which ``.ci/run`` runs; elsewhere they are skipped, and
fail instead under ``GRADLAB_REQUIRE_SLURM=1``)."""

import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import ROOT, cli, cpu_seconds, read_metrics

from gradlab import cli as commands

SWEEP = ["sweep=batched", "seed=1,2", "optim.lr=0.05,0.1", "trainer.max_steps=120",
         "print_config=false", "callbacks.figures=null"]  # fmt: skip
SLURM = ["hydra/launcher=batched_slurm", "hydra.launcher.cpus_per_task=1"]
LONG = ["sweep=batched", "seed=1,2", "trainer.max_steps=6000", "print_config=false",
        "logger=none", "callbacks.figures=null"]  # fmt: skip


UP = ("idle", "mixed", "allocated", "completing", "planned")  # states of a node that runs jobs


def slurm_missing() -> str | None:
    """Why the tests marked slurm cannot run here (None: a SLURM node is idle)."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed: bash scripts/slurm-local.sh up"
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
    states = r.stdout.split()
    if r.returncode or not any(s.rstrip("*~#!%$@^-") in UP for s in states):
        return f"no SLURM node is up ({r.stderr.strip() or states}): bash scripts/slurm-local.sh up"
    return None


@pytest.fixture
def slurm():
    reason = slurm_missing()
    if reason and os.environ.get("GRADLAB_REQUIRE_SLURM"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)


def sweep_in_process(monkeypatch, sweep: Path, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={sweep}"])
    commands.train()


def same_jobs(a: Path, b: Path, jobs) -> None:
    """Every job of two sweeps wrote the same files, metrics (but wall time), history and
    checkpoints (weights, optimizer state, loop counters)."""
    for job in map(str, jobs):
        assert files_of(a / job) == files_of(b / job), job
        ma, mb = read_metrics(a / job), read_metrics(b / job)
        ma.pop("wall_time_s"), mb.pop("wall_time_s")
        assert ma == mb, job
        assert (a / job / "history.csv").read_bytes() == (b / job / "history.csv").read_bytes()
        for ckpt in (a / job / "checkpoints").glob("*.ckpt"):
            x = torch.load(ckpt, map_location="cpu", weights_only=False)
            y = torch.load(b / job / "checkpoints" / ckpt.name, map_location="cpu",
                           weights_only=False)  # fmt: skip
            assert x["global_step"] == y["global_step"], (job, ckpt.name)
            for k, v in x["state_dict"].items():
                assert torch.equal(v, y["state_dict"][k]), (job, ckpt.name, k)
            assert str(x["optimizer_states"]) == str(y["optimizer_states"]), (job, ckpt.name)


def summary_of(sweep: Path) -> list[dict]:
    """summary.csv's rows but their wall times."""
    with open(sweep / "summary.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in csv.DictReader(f)]


def files_of(job: Path) -> list[str]:
    """A job's files, a TensorBoard event file's host, time and pid left out of its name (and
    the lock file a job resumed alone keeps, as every solo run does)."""
    names = [str(p.relative_to(job)) for p in job.rglob("*") if p.is_file()]
    names = [n for n in names if n != ".gradlab.lock"]
    return sorted(re.sub(r"events\.out\.tfevents\..*", "events", n) for n in names)


def test_groups_in_processes_of_their_own_equal_a_local_sweep(tmp_path, monkeypatch):
    """executor=submitit_local: two groups (max_runs=2) each in its own process write what
    the local batched sweep writes."""
    local, submitted = tmp_path / "local", tmp_path / "submitted"
    sweep_in_process(monkeypatch, local, *SWEEP)
    sweep_in_process(monkeypatch, submitted, *SWEEP, "hydra/launcher=batched_local",
                     "hydra.launcher.max_runs=2")  # fmt: skip
    same_jobs(local, submitted, range(4))
    assert len(list((submitted / ".submitit").glob("*_result.pkl"))) == 2  # two units
    assert summary_of(submitted) == summary_of(local)


def test_an_unknown_executor_is_one_line(tmp_path):
    r = cli("train.py", "-m", *SWEEP[:3], "trainer.max_steps=5",
            "hydra.launcher.executor=slurmm", f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: hydra.launcher.executor: 'slurmm' is not one of local, ")


@pytest.mark.slurm
def test_batched_groups_as_slurm_jobs_equal_a_local_sweep(slurm, tmp_path, monkeypatch):
    """Two groups of two runs as a SLURM job array: every job's files, metrics, history and
    checkpoints are the local batched sweep's."""
    local, submitted = tmp_path / "local", tmp_path / "slurm"
    sweep_in_process(monkeypatch, local, *SWEEP)
    sweep_in_process(monkeypatch, submitted, *SWEEP, *SLURM, "hydra.launcher.max_runs=2")
    same_jobs(local, submitted, range(4))
    logs = sorted(p.name for p in (submitted / ".submitit").glob("*_log.out"))
    assert len(logs) == 2 and all(re.fullmatch(r"\d+_[01]_0_log\.out", n) for n in logs), logs
    assert summary_of(submitted) == summary_of(local)


def start_slurm_sweep(sweep: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``train.py -m ARGS`` on SLURM in a process of its own; (it, its unit's job id) once
    the unit trains on the node."""
    proc = subprocess.Popen(
        [sys.executable, "train.py", "-m", *args, *SLURM, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:
        found = re.search(r"submitted \(SLURM jobs (\d+)", line)
        if found:
            return proc, found.group(1)
    raise AssertionError(f"no job submitted (exit {proc.wait()})")


def wait_training(sweep: Path, job_id: str, cpu_s: float, timeout: float = 300) -> None:
    """Wait until SLURM job ``job_id``'s unit has trained for ``cpu_s`` CPU seconds (its
    processes' time, from /proc: a state, so a busy machine only waits longer)."""
    deadline = time.monotonic() + timeout
    log = sweep / ".submitit" / f"{job_id}_0_log.err"
    while not (log.is_file() and "as one run of" in log.read_text()):
        assert time.monotonic() < deadline, f"job {job_id} did not start training"
        time.sleep(0.1)
    start = None
    while True:
        used = 0.0
        for pid in pids_of(job_id):
            with contextlib.suppress(OSError):  # (a process of the job that just ended)
                used += cpu_seconds(pid)
        start = used if start is None else start
        if used - start >= cpu_s:
            return
        assert time.monotonic() < deadline, f"job {job_id} did not train {cpu_s} s"
        time.sleep(0.1)


def pids_of(job_id: str) -> list[int]:
    """The processes of SLURM job ``job_id`` on this node."""
    r = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True)
    return [int(line.split()[0]) for line in r.stdout.splitlines()[1:] if line.strip()]


@pytest.mark.slurm
def test_a_cancelled_slurm_group_resumes_to_equal_an_uninterrupted_sweep(
    slurm, tmp_path, monkeypatch
):
    """scancel mid-run: the group stops between two updates and writes its jobs; the sweep
    ends with one error line and exit 130; its resume command continues each job from its
    last.ckpt to the uninterrupted sweep's results."""
    sweep, whole = tmp_path / "sweep", tmp_path / "whole"
    proc, job_id = start_slurm_sweep(sweep, *LONG)
    wait_training(sweep, job_id, cpu_s=2)
    subprocess.run(["scancel", job_id], check=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: SIGTERM: sweep interrupted; 2 job(s) stopped"), last
    assert read_metrics(sweep / "0")["status"] == "interrupted"
    command = last.split("resume with: python train.py ", 1)[1].split()
    assert "hydra/launcher=batched_slurm" in command
    monkeypatch.setattr(sys, "argv", ["train.py", *command])
    commands.train()
    sweep_in_process(monkeypatch, whole, *LONG)
    same_jobs(sweep, whole, range(2))


@pytest.mark.slurm
def test_ctrl_c_in_the_launcher_stops_every_slurm_group_with_its_runs_written(slurm, tmp_path):
    """Ctrl-C where the sweep was launched cancels its SLURM jobs: each group stops between two
    updates and writes its runs (resumable), the sweep ends with exit 130 and one line."""
    sweep = tmp_path / "sweep"
    proc, job_id = start_slurm_sweep(sweep, *LONG)
    wait_training(sweep, job_id, cpu_s=1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("error: SIGINT: sweep interrupted; 2 job(s)")
    for job in ("0", "1"):
        assert read_metrics(sweep / job)["status"] == "interrupted"
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slurm
def test_a_preempted_slurm_group_is_submitted_again_and_ends_as_uninterrupted(
    slurm, tmp_path, monkeypatch
):
    """SIGUSR2 (submitit's signal of a time limit or a preemption) mid-run: the group writes
    its jobs, the launcher submits it again, its jobs resume; the sweep ends as if never
    stopped."""
    sweep, whole = tmp_path / "sweep", tmp_path / "whole"
    proc, job_id = start_slurm_sweep(sweep, *LONG)
    wait_training(sweep, job_id, cpu_s=2)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert f"job {job_id} stopped by its time limit or a preemption: submitted again" in err
    sweep_in_process(monkeypatch, whole, *LONG)
    same_jobs(sweep, whole, range(2))


@pytest.mark.slurm
def test_a_failed_slurm_group_is_listed_with_its_job_and_log(slurm, tmp_path):
    """A group killed outright (SIGKILL): each of its jobs gets an error.txt naming the SLURM
    job and its log, the summary lists them failed, the sweep ends in one error line."""
    sweep = tmp_path / "sweep"
    proc, job_id = start_slurm_sweep(sweep, *LONG)
    wait_training(sweep, job_id, cpu_s=1)
    for pid in pids_of(job_id):  # the unit's python, as the OOM killer or a lost node ends it
        if b"submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: job {job_id} ") and "_log.err" in last, last
    for job in ("0", "1"):
        text = (sweep / job / "error.txt").read_text()
        assert text.startswith(f"failed: job {job_id} ") and str(sweep / ".submitit") in text
    rows = (sweep / "summary.csv").read_text().strip().splitlines()[1:]
    assert len(rows) == 2 and all(",failed," in row and f"job {job_id}" in row for row in rows)


@pytest.mark.slurm
def test_the_basic_submitit_slurm_launcher_runs_a_two_job_sweep(slurm, tmp_path):
    r = cli("train.py", "-m", "hydra/launcher=submitit_slurm", "seed=1,2",
            "trainer.max_steps=20", "print_config=false", "logger=none",
            "callbacks.figures=null", f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert [read_metrics(tmp_path / j)["step"] for j in ("0", "1")] == [20, 20]
    assert "sweep summary: 2 jobs (2 ok)" in r.stdout and "srun" not in r.stderr


@pytest.mark.slurm
def test_ddp_as_two_srun_tasks_equals_the_single_process_run(slurm, tmp_path):
    """trainer=ddp started as two SLURM tasks (Lightning's SLURM environment: ranks from
    srun) trains as the one-process run does, up to float rounding; rank 1 writes nothing."""
    args = ["trainer.max_steps=50", "print_config=false", "logger=none",
            "callbacks.figures=null"]  # fmt: skip
    r = subprocess.run(
        ["srun", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", sys.executable,
         "train.py", "trainer=ddp", *args, f"hydra.run.dir={tmp_path / 'ddp'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "srun` command is available" not in r.stderr
    one = cli("train.py", *args, f"hydra.run.dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    ddp, single = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "one")
    assert ddp["step"] == single["step"] == 50
    for key in ("train/loss", "val/loss", "test/mse"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key


def test_lightnings_srun_advice_only_for_several_processes(tmp_path, monkeypatch):
    """With srun on the PATH (every cluster's login node), a one-process trainer says nothing
    of it; a trainer of two processes gets Lightning's advice once."""
    from conftest import make_cfg

    from gradlab.pipeline.build import build_trainer

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)

    class NoData:
        val = None

    with warnings.catch_warnings(record=True) as seen:  # (the filters in place kept)
        build_trainer(make_cfg(tmp_path / "one", "logger=none"), NoData())
    assert not [w for w in seen if "srun" in str(w.message)]
    with warnings.catch_warnings(record=True) as seen:
        build_trainer(make_cfg(tmp_path / "two", "logger=none", "trainer=ddp"), NoData())
    assert len([w for w in seen if "srun` command is available" in str(w.message)]) == 1
