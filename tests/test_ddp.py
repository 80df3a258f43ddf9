"""Lightning DDP on CPU (gloo, 2 processes) equals the single-process run in both modes."""

import csv

import pytest
from conftest import cli


def losses(run_dir):
    with open(run_dir / "history.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, grads",
    # hand gradients with a mean loss (sincos) and a sum loss (poly), and autograd with the
    # sum loss that needs the world-size scaling; autograd with a mean loss is Lightning's
    # own DDP path (and 18 s of suite time)
    [("sincos", "manual"), ("poly", "manual"), ("poly", "autograd")],
)
def test_ddp_matches_single_process(tmp_path, experiment, grads):
    runs = {}
    for trainer in ("ddp", "cpu"):
        out = tmp_path / trainer
        r = cli(
            "train.py",
            f"experiment={experiment}",
            f"grads={grads}",
            f"trainer={trainer}",
            "trainer.max_steps=100",
            f"hydra.run.dir={out}",
            "print_config=false",
        )
        assert r.returncode == 0, r.stderr[-2000:]
        runs[trainer] = losses(out)
        # one line says what two devices on a CPU are, once (rank 0), and no warning follows
        said = "trainer.devices=2: 2 CPU processes (DDP over gloo)"
        assert r.stdout.count(said) == (trainer == "ddp")
        assert "sync_dist" not in r.stderr
    assert len(runs["ddp"]) == len(runs["cpu"]) == 100
    for a, b in zip(runs["ddp"], runs["cpu"], strict=True):
        assert a == pytest.approx(b, rel=1e-5)
