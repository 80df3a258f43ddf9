"""Every speed option gives the same losses as the plain path (the speed issue's rule)."""

import pytest
from conftest import history, run_train

QUIET = [
    "trainer.max_steps=120",
    "logger=none",
    "callbacks=none",
    "+callbacks.history._target_=gradlab.callbacks.TrainingHistory",
    "+callbacks.history.plot=false",
]


def losses(run_dir):
    return [row["loss"] for row in history(run_dir)]


@pytest.mark.parametrize("optim, rel", [("sgd", 0.0), ("adam", 1e-6)])
def test_fused_optimizers_give_the_same_losses(tmp_path, optim, rel):
    run_train(tmp_path / "fused", *QUIET, f"optim={optim}")
    run_train(tmp_path / "plain", *QUIET, f"optim={optim}", "optim.fused=false")
    fused, plain = losses(tmp_path / "fused"), losses(tmp_path / "plain")
    assert fused == pytest.approx(plain, rel=rel, abs=0)


def test_thread_count_does_not_change_the_losses(tmp_path):
    run_train(tmp_path / "one", *QUIET, "threads=1")
    run_train(tmp_path / "default", *QUIET, "threads=null")
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "default"), rel=1e-6)


def test_input_grad_is_skipped_only_when_asked():
    import torch

    from gradlab.models import MLP, Polynomial

    for model, x in ((MLP([2, 3, 1]), torch.randn(5, 2)), (Polynomial(3), torch.randn(5, 1))):
        with torch.no_grad():
            pred = model(x)
            assert model.manual_backward(torch.ones_like(pred)) is not None
            assert model.manual_backward(torch.ones_like(pred), input_grad=False) is None
