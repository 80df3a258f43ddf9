"""Every failure ends in one ``error:`` line naming the key or file, with its exit code, and
changes nothing of an earlier run. Run in-process through ``main()`` (no new interpreter)."""

import hashlib
import sys

import pytest
import torch
from conftest import run_train

from gradlab import cli


def write_fixtures(root):
    """A finished 20-update run (2-3-4-1), one of another size (2-10-1), a text file, a
    truncated and a byte-flipped copy of the first run's checkpoint, and a sweep directory
    whose Optuna study file is not a database."""
    quiet = ["trainer.max_steps=20", "print_config=false", "logger=none"]
    run_train(root / "run", *quiet)
    run_train(root / "wide", *quiet, "model.sizes=[2,10,1]")
    raw = (root / "run" / "checkpoints" / "last.ckpt").read_bytes()
    (root / "text.ckpt").write_text("not a checkpoint\n")
    (root / "truncated.ckpt").write_bytes(raw[: len(raw) // 2])
    flipped = bytearray(raw)
    for i in range(100, len(flipped), 97):
        flipped[i] ^= 0xFF
    (root / "flipped.ckpt").write_bytes(bytes(flipped))
    (root / "corrupt_study").mkdir()
    (root / "corrupt_study" / "optuna.db").write_text("not a database")
    return root


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return write_fixtures(tmp_path_factory.mktemp("finished"))


def call(entry, monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["prog", *args])
    with pytest.raises(SystemExit) as stop:
        entry()
    err = capsys.readouterr().err
    return stop.value.code, err


def snapshot(directory):
    return {
        p.relative_to(directory): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# (arguments, exit code, text the last line must hold); {root} is the finished fixture
CASES = [
    (["model=nope"], 2, "model=nope: no such option"),
    (["optim=nope"], 2, "optim=nope"),
    (["data=nope"], 2, "data=nope"),
    (["experiment=nope"], 2, "experiment=nope"),
    (["foo=1"], 2, "foo: no such key"),
    (["+seeed=7"], 2, "seeed: no part of the run reads this key; did you mean 'seed'"),
    (["+foo=1"], 2, "foo: no part of the run"),
    (["+optim.lrr=0.5"], 2, "optim.lrr: no part of the run reads this key; did you mean 'lr'"),
    (["+module.foo=1"], 2, "module.foo"),
    (["+data.foo=1"], 2, "data.foo"),
    (["+trainer.foo=1"], 2, "trainer.foo"),
    (["optim.momentum=-1"], 2, "optim.momentum"),
    (["optim=adam", "+optim.betas=[0.9,1.5]"], 2, "optim.betas: Invalid beta"),
    (["seed=-1"], 2, "seed: must be in [0, 2**32)"),
    (["seed=abc"], 2, "seed:"),
    (["restarts=1.5"], 2, "restarts:"),
    (["dtype=float16"], 2, "dtype:"),
    (["model.sizes=[1,2"], 2, "model.sizes: cannot parse"),
    (
        ["model.sizes=[1,2"],
        2,
        "a list closes its brackets, quoted for the shell: model.sizes='[1,2,1]'",
    ),
    (["tags=a=b"], 2, "quoted for Hydra: \"tags='a=b'\""),
    (["optim.lr==0.1"], 2, "one '=' between the key and its value: optim.lr=0.1"),
    (["model.sizes=[2,0,1]"], 2, "model.sizes: need >= 2 positive integers"),
    (["model.sizes=[3,4,1]"], 2, "model: does not take this data's inputs"),
    (["model.sizes=[2,3,2]"], 2, "model: gives 2 outputs"),
    (["model.activation=nope"], 2, "model.activation: unknown activation 'nope'"),
    (["data.n_train=-5"], 2, "data.n_train: must be a positive integer"),
    (["loss=nll"], 2, "loss=nll: needs class labels"),
    (["loss=bce"], 2, "loss=bce: needs targets in [0, 1]"),
    (["loss=value"], 2, "loss=value"),
    (["data=blobs"], 2, "loss=mse: data=blobs has class labels"),
    (["optim.lr=nan"], 2, "optim.lr"),
    (["trainer.max_steps=0"], 2, "trainer.max_steps"),
    (["trainer.val_check_interval=1.5"], 2, "trainer.val_check_interval"),
    (["threads=0"], 2, "threads"),
    (["+trainer.strategy=ddp_spawn"], 2, "trainer.strategy: ddp_spawn is not supported"),
    (["+callbacks.x._target_=no.such.Callback"], 2, "callbacks.x._target_: cannot import"),
    (["ckpt_path=/nonexistent/last.ckpt"], 2, "ckpt_path: no checkpoint file at"),
    (["ckpt_path={root}/text.ckpt"], 2, "text.ckpt is not a readable checkpoint"),
    (["ckpt_path={root}/truncated.ckpt"], 2, "truncated.ckpt is not a readable checkpoint"),
    (["ckpt_path={root}/flipped.ckpt"], 2, "flipped.ckpt is not a readable checkpoint"),
    (
        ["ckpt_path={root}/wide/checkpoints/last.ckpt"],
        2,
        "model.sizes: the checkpoint was written with [2, 10, 1], this run has [2, 3, 4, 1]",
    ),
    (
        ["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=20"],
        2,
        "ckpt_path: that run already finished",
    ),
    (  # resuming with another optimizer, other data or another seed: not the same run
        ["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "optim=adam"],
        2,
        "optim._target_: the checkpoint was written with torch.optim.SGD",
    ),
    (
        ["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "data.n_train=40"],
        2,
        "data.n_train: the checkpoint was written with 50, this run has 40",
    ),
    (
        ["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "seed=2"],
        2,
        "seed: the checkpoint was written with 1, this run has 2",
    ),
    (["+trainer.precision=64"], 2, "trainer.precision: 64 converts the model but not the data"),
    (["+trainer.precision=bf16-true"], 2, "use bf16-mixed (autocast) or dtype=float32"),
    (["hydra.run.dir={root}/text.ckpt"], 2, "hydra.run.dir:"),
    (["hydra.run.dir=/proc/gradlab"], 2, "hydra.run.dir: cannot create"),
    (["hydra.run.dir={root}/run"], 2, "holds another run's results"),
    (["optim.lr=1000"], 3, "optim.lr: training diverged at step"),
    (["task_name=../../x"], 2, "task_name: '../../x' is not a plain name"),
    (["task_name=/tmp/x"], 2, "task_name: '/tmp/x' is not a plain name"),
    (["hydra.job.name=../../jobx"], 2, "hydra.job.name: '../../jobx' is not a plain name"),
    # ranges, checked before the Trainer starts (pipeline/ranges.py)
    (["scheduler=step", "scheduler.step_size=0"], 2, "scheduler.step_size: must be an integer"),
    (["scheduler=step", "scheduler.gamma=-1"], 2, "scheduler.gamma: must be a number > 0"),
    (["scheduler=cosine", "scheduler.T_max=0"], 2, "scheduler.T_max: must be an integer >= 1"),
    (["data.low=2", "data.high=-2"], 2, "data.low: must be below data.high"),
    (["data=wave1d", "data.noise=-0.1"], 2, "data.noise: must be a number >= 0"),
    (["module.grad_clip=-1"], 2, "module.grad_clip: must be a number > 0"),
    (["module.stop_tol=-1"], 2, "module.stop_tol: must be a number >= 0"),
    (["grads=check", "grads.every_n_steps=0"], 2, "grads.every_n_steps: must be an integer"),
    (["grads=check", "grads.tol=-1"], 2, "grads.tol: must be a number > 0"),
    (["trainer.val_check_interval=0"], 2, "trainer.val_check_interval: must be a number > 0"),
    (
        ["callbacks=dynamics", "callbacks.sharpness.every_n_steps=0"],
        2,
        "callbacks.sharpness.every_n_steps: must be an integer >= 1",
    ),  # fmt: skip
    (["optim=bfgs", "optim.gtol=-1"], 2, "optim.gtol: must be a number >= 0"),
    (["grads=manual", "+trainer.precision=16-mixed"], 2, "trainer.precision: 16-mixed with grads"),
    (["model.sizes=[2,100000,100000,1]"], 2, "model.sizes x restarts: 10,000,500,001 parameters"),
    (["restarts=100000000"], 2, "model.sizes x restarts: 30 parameters x 100000000"),
]


@pytest.mark.parametrize("args, code, text", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_train_failure_is_one_line(finished, tmp_path, monkeypatch, capsys, args, code, text):
    before = snapshot(finished)
    args = [a.format(root=finished) for a in args]
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    got, err = call(cli.train, monkeypatch, capsys, *args, "print_config=false", "logger=none")
    last = err.strip().splitlines()[-1]
    assert got == code, err[-2000:]
    assert last.startswith("error: ") and text in last, last
    assert "Traceback" not in err
    assert snapshot(finished) == before  # nothing of the earlier runs changed
    if code == 2:  # a config error stops before training: no checkpoint, no metrics
        assert not (tmp_path / "run" / "checkpoints").exists()
        assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "args, text",
    [
        ([], "ckpt_path: required"),
        (["ckpt_path={root}/text.ckpt"], "text.ckpt is not a readable checkpoint"),
        (["ckpt_path={root}/truncated.ckpt"], "truncated.ckpt is not a readable checkpoint"),
        (["ckpt_path=/nonexistent.ckpt"], "ckpt_path: no checkpoint file"),
    ],
)
def test_eval_failure_is_one_line(finished, tmp_path, monkeypatch, capsys, args, text):
    args = [a.format(root=finished) for a in args] + [f"hydra.run.dir={tmp_path}"]
    code, err = call(cli.evaluate, monkeypatch, capsys, *args)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and text in last, err[-2000:]
    assert "Traceback" not in err


def test_failed_sweep_job_is_named_not_a_traceback(tmp_path, monkeypatch, capsys):
    code, err = call(
        cli.train,
        monkeypatch,
        capsys,
        "-m",
        "optimized_metric=val/los",
        "trainer.max_steps=10",
        "print_config=false",
        "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    )
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err
    assert last.startswith("error: ") and "job(s) 0 failed" in last
    assert "did you mean 'val/loss'" in (tmp_path / "0" / "error.txt").read_text()


def test_a_diverged_sweep_job_is_a_result(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prog",
            "-m",
            "optim.lr=0.1,1000",
            "trainer.max_steps=30",
            "print_config=false",
            "logger=none",
            f"hydra.sweep.dir={tmp_path}",
        ],
    )
    cli.train()  # no SystemExit: divergence is the answer for lr 1000, not a failure
    summary = (tmp_path / "summary.csv").read_text()
    assert ",ok," in summary and ",diverged," in summary
    assert torch.load(tmp_path / "1" / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("sweep", [[], ["sweep=batched"]], ids=["basic", "batched"])
def test_a_sweep_of_no_jobs_is_refused(tmp_path, monkeypatch, capsys, sweep):
    code, err = call(
        cli.train, monkeypatch, capsys, "-m", "optim.lr=range(0,0)", *sweep,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert (
        last
        == "error: optim.lr=range(0,0): expands to no jobs; give every swept key at least one value"
    )
    assert not (tmp_path / "sweep").exists()  # refused before anything is written


def test_a_corrupt_study_file_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("optuna")
    (tmp_path / "optuna.db").write_text("not a database")
    code, err = call(
        cli.train, monkeypatch, capsys, "hparams_search=sincos_optuna",
        "hydra.sweeper.n_trials=1", "trainer.max_steps=5", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: hydra.sweeper.storage: cannot open the study 'sincos_mlp'")
    assert "file is not a database" in last
    assert (tmp_path / "optuna.db").read_text() == "not a database"  # left as it was


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU-only rewrite")
def test_a_precision_lightning_rewrites_is_announced(tmp_path, capsys):
    """16-mixed on a CPU: one line of gradlab's says what Lightning will run instead, in
    place of Lightning's warnings."""
    run_train(tmp_path, "+trainer.precision=16-mixed", "trainer.max_steps=2", "logger=none",
              "callbacks.figures=null", "print_config=false")  # fmt: skip
    out, err = capsys.readouterr()
    assert "trainer.precision=16-mixed: a CPU has no float16 autocast; Lightning runs " in out
    assert "AMP with fp16 is not supported" not in out + err
