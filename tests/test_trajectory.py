"""Parameter trajectories within a memory budget for any model size; checkpoints that hold
state, not logs (large trajectories live in the run directory and come back on resume)."""

import pytest
import torch
from conftest import history, run_train

from gradlab.module.loss_history import LossHistory, load_snapshots


def test_snapshots_thin_to_the_budget_and_keep_their_steps():
    model = torch.nn.Linear(10, 10)  # 110 values
    h = LossHistory(1, capacity=4, track_params=True, budget_values=110 * 8)  # 8 snapshots
    h.start(model)
    seen = {}
    for i in range(100):
        with torch.no_grad():
            model.weight.add_(1.0)
        h.append(torch.tensor([float(i)]), model)
        seen[i + 1] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert h.trajectory().shape[0] <= 8  # bounded, whatever the run length
    steps = h.snapshot_steps().tolist()
    assert steps == sorted(steps) and steps[-1] <= 100 and steps[0] == h.stride
    for step, row in zip(steps, h.trajectory(), strict=True):
        assert torch.equal(row, seen[step])  # each snapshot is the point after its update
    assert len(h.table()) == 100  # the losses keep every update


RUN = [
    "model.sizes=[2,64,64,1]",  # 4,417 values: more than history.csv's 64 columns
    "module.track_params=true",
    "module.trajectory_budget_mb=0.1",  # 26,214 values: 5 snapshots of this model
    "optim.lr=0.01",
    "trainer.max_steps=300",
    "callbacks.model_checkpoint.every_n_train_steps=100",
    "callbacks.model_checkpoint.monitor=null",
    "print_config=false",
    "logger=none",
]


def test_a_large_model_keeps_a_bounded_path_outside_its_checkpoint(tmp_path):
    run_train(tmp_path, *RUN)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    state, saved = ckpt["gradlab"]["history"], ckpt["gradlab_trajectory"]
    assert state["params"] is None and saved["dir"] == "trajectory"  # written by the callback
    steps = saved["steps"]
    assert 2 <= len(steps) <= 5
    assert load_snapshots(tmp_path / "trajectory", steps).shape == (len(steps), 4417)
    assert list(history(tmp_path)[0]) == ["step", "loss"]  # no per-value columns
    assert (tmp_path / "plots" / "params.png").stat().st_size > 10_000
    assert (tmp_path / "checkpoints" / "last.ckpt").stat().st_size < 2 * 2**20


def test_resume_reads_the_trajectory_back(tmp_path):
    run_train(tmp_path / "whole", *RUN)
    with pytest.raises(RuntimeError, match="crash at step"):
        run_train(
            tmp_path / "crashed",
            *RUN,
            "+callbacks.crash._target_=helpers.RaiseAtStep",
            "+callbacks.crash.step=250",
        )
    run_train(
        tmp_path / "resumed",
        *RUN,
        f"ckpt_path={tmp_path / 'crashed' / 'checkpoints' / 'last.ckpt'}",
    )

    def path(run):
        ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        steps = ckpt["gradlab_trajectory"]["steps"]
        return steps, load_snapshots(run / "trajectory", steps)

    (steps_a, a), (steps_b, b) = path(tmp_path / "whole"), path(tmp_path / "resumed")
    assert steps_a == steps_b
    assert torch.equal(a, b)


def test_the_budget_counts_the_dtypes_bytes(tmp_path):
    """A float64 run with a 1 MB budget keeps at most 1 MB of snapshots (8-byte values)."""
    import gradlab

    run = gradlab.run(
        "dtype=float64",
        "model.sizes=[2,64,64,1]",
        "optim.lr=0.01",
        "module.track_params=true",
        "module.trajectory_budget_mb=1",
        "trainer.max_steps=300",
        "logger=none",
        "callbacks=none",
        output_dir=tmp_path,
        quiet=True,
    )
    params = run.module.loss_history.params
    assert params.dtype == torch.float64
    assert len(params) > 2 and params.numel() * params.element_size() <= 2**20
