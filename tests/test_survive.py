"""Runs that survive: kill and resume, atomic checkpoints, divergence, launchers, concurrency."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, cli, read_metrics

RUN = [
    "trainer.max_steps=400",
    "print_config=false",
    "optim=adam",
    "optim.lr=0.01",
    "callbacks.model_checkpoint.every_n_train_steps=100",
    "callbacks.model_checkpoint.monitor=null",
    "trainer.val_check_interval=1000",
]


def state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    whole, crashed, resumed = tmp_path / "whole", tmp_path / "crashed", tmp_path / "resumed"
    r = cli("train.py", *RUN, f"hydra.run.dir={whole}")
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), PYTHONWARNINGS="ignore")
    r = subprocess.run(
        [
            sys.executable,
            "train.py",
            *RUN,
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
    r = cli("train.py", *RUN, f"hydra.run.dir={resumed}", f"ckpt_path={ckpt}")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = read_metrics(whole), read_metrics(resumed)
    assert b["step"] == a["step"] == 400
    assert b["train/loss"] == a["train/loss"]
    sa, sb = (
        state(whole / "checkpoints" / "last.ckpt"),
        state(resumed / "checkpoints" / "last.ckpt"),
    )
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


KILLED_WHILE_SAVING = """
import os, signal, sys, torch

class KillHere:  # pickled mid-save: the process dies with the file half written
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

path, writer = sys.argv[1], sys.argv[2]
ckpt = {"state_dict": {"w": torch.zeros(1000)}, "x": KillHere()}
if writer == "atomic":
    from gradlab.checkpoint_io import AtomicCheckpointIO
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


def test_resume_from_corrupt_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 100)
    r = cli(
        "train.py", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'run'}", "print_config=false"
    )
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error: ckpt_path:")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("grads", ["autograd", "manual"])
def test_divergence_stops_with_a_clear_message(tmp_path, grads):
    r = cli(
        "train.py",
        "optim.lr=1e3",
        f"grads={grads}",
        f"hydra.run.dir={tmp_path}",
        "print_config=false",
    )
    assert r.returncode == 3
    line = r.stderr.strip().splitlines()[-1]
    assert "diverged at step" in line and "lr = 1000.0" in line and "loss = " in line
    assert (tmp_path / "error.txt").is_file() and (tmp_path / "tensorboard").is_dir()


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
    env = dict(os.environ, PYTHONWARNINGS="ignore")
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


def test_optuna_search_three_trials(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    r = cli(
        "train.py",
        "hparams_search=sincos_optuna",
        "hydra.sweeper.n_trials=3",
        "trainer.max_steps=100",
        f"hydra.sweep.dir={sweep}",
        "print_config=false",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (sweep / "optuna.db").is_file()
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in best and "optim.lr" in best and "best_value" in best
    assert len(list(sweep.glob("[0-9]*"))) == 3
