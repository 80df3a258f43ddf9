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
