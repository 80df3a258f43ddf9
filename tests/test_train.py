"""The default run end to end: metrics.json, TensorBoard events, checkpoints, eval.py."""

import math

import pytest
from conftest import history, make_cfg, read_metrics, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return acc


def test_short_run_writes_everything(run):
    metrics, out = run("trainer.max_steps=200")
    h = history(out)
    assert len(h) == 200 and h[-1]["loss"] < h[0]["loss"]
    saved = read_metrics(out)
    assert saved["step"] == 200
    for key in ("train/loss", "val/loss", "test/mse", "test/r2", "wall_time_s"):
        assert math.isfinite(saved[key]), key
    assert (out / "checkpoints" / "last.ckpt").is_file()
    tags = scalars(out).Tags()["scalars"]
    assert "train/loss" in tags and "val/loss" in tags
    events = scalars(out).Scalars("train/loss")
    assert events[0].value > events[-1].value


@pytest.mark.slow
def test_default_run_fits_sincos(run):
    metrics, out = run()
    assert metrics["step"] == 1000
    assert metrics["train/loss"] < 0.01
    assert metrics["test/r2"] > 0.95


def test_same_command_same_numbers(tmp_path):
    a = run_train(tmp_path / "a", "trainer.max_steps=100")
    b = run_train(tmp_path / "b", "trainer.max_steps=100")
    assert a["train/loss"] == b["train/loss"] and a["test/mse"] == b["test/mse"]


def test_seed_zero_is_a_seed(tmp_path):
    a = run_train(tmp_path / "a", "trainer.max_steps=5", "seed=0")
    b = run_train(tmp_path / "b", "trainer.max_steps=5", "seed=0")
    c = run_train(tmp_path / "c", "trainer.max_steps=5", "seed=1")
    assert a["train/loss"] == b["train/loss"] != c["train/loss"]


def test_eval_reproduces_test_metrics(tmp_path):
    from gradlab.pipeline.evaluate import evaluate

    metrics = run_train(tmp_path / "run", "trainer.max_steps=100", "trainer.val_check_interval=100")
    cfg = make_cfg(
        tmp_path / "eval",
        f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
        config_name="eval",
    )
    evaluated = evaluate(cfg)
    assert evaluated["test/mse"] == pytest.approx(metrics["test/mse"], rel=1e-6)
    assert evaluated["test/r2"] == pytest.approx(metrics["test/r2"], rel=1e-6)
    assert read_metrics(tmp_path / "eval")["test/mse"] == evaluated["test/mse"]


def test_debug_configs(tmp_path):
    fdr = run_train(tmp_path / "fdr", "debug=fdr")
    # fast_dev_run: one update, one validation and one test batch, no logger
    assert fdr["step"] == 1 and "val/loss" in fdr and "test/mse" in fdr
    assert read_metrics(tmp_path / "fdr")["step"] == 1
    assert not (tmp_path / "fdr" / "tensorboard").exists()
    run_train(tmp_path / "prof", "debug=profiler", "trainer.max_steps=20")
    assert list((tmp_path / "prof").glob("*profiler*"))
