"""trainer=gpu puts data and model on a CUDA device (skipped on machines without one)."""

import pytest
import torch
from conftest import run_train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("grads", ["autograd", "manual"])
def test_gpu_run_matches_cpu(tmp_path, grads):
    gpu = run_train(tmp_path / "gpu", "trainer=gpu", f"grads={grads}", "trainer.max_steps=100")
    cpu = run_train(tmp_path / "cpu", "trainer=cpu", f"grads={grads}", "trainer.max_steps=100")
    assert gpu["train/loss"] == pytest.approx(cpu["train/loss"], rel=1e-4)


def test_batched_sweep_on_the_gpu_matches_the_cpu(tmp_path, monkeypatch):
    import csv
    import sys

    from gradlab import cli as commands

    def sweep(where, accelerator):
        monkeypatch.setattr(
            sys,
            "argv",
            [
                "train.py",
                "-m",
                "sweep=batched",
                "optim.lr=0.02,0.05",
                "seed=1,2",
                f"trainer.accelerator={accelerator}",
                "dtype=float64",
                "trainer.max_steps=300",
                "print_config=false",
                "logger=none",
                f"hydra.sweep.dir={where}",
            ],
        )
        commands.train()
        with open(where / "summary.csv") as f:
            return [float(r["train/loss"]) for r in csv.DictReader(f)]

    gpu, cpu = sweep(tmp_path / "gpu", "gpu"), sweep(tmp_path / "cpu", "cpu")
    assert gpu == pytest.approx(cpu, rel=1e-6)


@pytest.mark.parametrize("exact", ["true", "false"])
def test_a_batched_adam_group_on_the_gpu_matches_the_cpu_with_its_checkpoints(
    tmp_path, monkeypatch, exact
):
    """A group on one CUDA device, as a SLURM job of hydra/launcher=batched_slurm trains it:
    stacked runs with per-run Adam options (exact: each run's step; else one batched step),
    each job's metrics and last.ckpt (weights, Adam's moments) equal to the CPU group's."""
    import sys

    from conftest import read_metrics

    from gradlab import cli as commands

    def sweep(where, accelerator):
        monkeypatch.setattr(sys, "argv", [
            "train.py", "-m", "sweep=batched", "optim=adam", "optim.lr=0.005,0.01", "seed=1,2",
            f"hydra.launcher.exact={exact}", f"trainer.accelerator={accelerator}",
            "dtype=float64", "trainer.max_steps=200", "print_config=false", "logger=none",
            "callbacks.figures=null", f"hydra.sweep.dir={where}",
        ])  # fmt: skip
        commands.train()

    sweep(tmp_path / "gpu", "gpu")
    sweep(tmp_path / "cpu", "cpu")
    for job in ("0", "1", "2", "3"):
        gpu, cpu = read_metrics(tmp_path / "gpu" / job), read_metrics(tmp_path / "cpu" / job)
        assert gpu["step"] == cpu["step"] == 200
        assert gpu["train/loss"] == pytest.approx(cpu["train/loss"], rel=1e-6)
        a, b = (torch.load(tmp_path / d / job / "checkpoints" / "last.ckpt", map_location="cpu",
                           weights_only=False) for d in ("gpu", "cpu"))  # fmt: skip
        assert a["global_step"] == b["global_step"]
        for k, v in b["state_dict"].items():
            assert torch.allclose(a["state_dict"][k], v, rtol=1e-6, atol=1e-9), k
        for i, state in b["optimizer_states"][0]["state"].items():
            for name in ("exp_avg", "exp_avg_sq"):
                got = a["optimizer_states"][0]["state"][i][name]
                assert torch.allclose(got, state[name], rtol=1e-6, atol=1e-12), (i, name)
