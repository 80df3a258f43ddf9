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


# Lightning calls 3 hooks on every callback for every update (train batch start and end,
# before the optimizer step; on_before/after_backward only under manual_backward, which a
# float32/float64 run on one device does not need): 6 default callbacks make 18 calls;
# benchmarks/speed.py --only A prints the count and what the update costs.
HOOKS_PER_CALLBACK = 3
MAX_HOOK_CALLS_PER_UPDATE = 18


def test_default_callbacks_make_few_hook_calls_per_update(tmp_path):
    import gradlab

    steps = 60
    run = gradlab.run(
        f"trainer.max_steps={steps}",
        "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
        f"+trainer.profiler.dirpath={tmp_path}",
        "+trainer.profiler.filename=hooks",
        "callbacks.figures.plot_every_n_steps=null",
        output_dir=tmp_path / "run",
        quiet=True,
    )
    trainer = run.module.trainer
    calls = {
        action: len(times)
        for action, times in trainer.profiler.recorded_durations.items()
        if action.startswith("[Callback]") and len(times) >= steps  # called every update
    }
    assert len(trainer.callbacks) * HOOKS_PER_CALLBACK == sum(calls.values()) / steps
    assert sum(calls.values()) / steps <= MAX_HOOK_CALLS_PER_UPDATE
    # gradlab's default callbacks read the module's loss history at the end: no gradlab code
    # runs in a per-update hook (Lightning's own progress bar and checkpoint code aside, and
    # the figures' optional drawing during training)
    per_update = ("on_train_batch_start", "on_train_batch_end", "on_before_backward",
                  "on_after_backward", "on_before_optimizer_step")  # fmt: skip
    mine = [c for c in trainer.callbacks if type(c).__module__.startswith("gradlab.callbacks")]
    assert mine
    for callback in mine:
        for hook in per_update:
            if type(callback).__name__ == "FigureLogger" and hook == "on_train_batch_end":
                continue
            # the bar's update replaces Lightning's TQDMProgressBar.on_train_batch_end (the
            # same work: a counter test, then the bar or a plain line every refresh_rate)
            if type(callback).__name__ == "UpdateProgressBar" and hook == "on_train_batch_end":
                continue
            where = getattr(type(callback), hook).__module__
            assert where.startswith("lightning"), (callback, hook)
