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
