"""hydra/launcher=batched: a sweep over seeds and learning rates trains as one vectorized run,
and each job's results equal the job run on its own."""

import csv
import json
import re
import sys

import pytest
import torch
from conftest import history, run_train, same, same_checkpoints

from gradlab import cli as commands

pytestmark = pytest.mark.numerics  # also run under ATEN_CPU_CAPABILITY=default (make test)

STEPS = ["trainer.max_steps=1000", "print_config=false", "logger=none"]


def sweep(monkeypatch, tmp_path, *args):
    monkeypatch.setattr(
        sys,
        "argv",
        ["train.py", "-m", "hydra/launcher=batched", *args, f"hydra.sweep.dir={tmp_path}"],
    )
    commands.train()
    with open(tmp_path / "summary.csv") as f:
        return list(csv.DictReader(f))


def run_alone(tmp_path, *args) -> list[float]:
    run_train(tmp_path, *args, "callbacks.figures=null")
    return [row["loss"] for row in history(tmp_path)]


def metrics_step(run_dir) -> int:
    return json.loads((run_dir / "metrics.json").read_text())["step"]


def max_rel(a, b) -> float:
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    assert a.shape == b.shape
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


@pytest.mark.parametrize(
    ("optim", "lrs", "dtype"),
    [
        ("sgd", "0.02,0.1", "float32"),
        ("adam", "0.003,0.01", "float32"),
        ("sgd", "0.03,0.1", "float64"),
    ],
)
def test_per_run_learning_rates_are_bit_identical_to_solo_runs(
    tmp_path, monkeypatch, optim, lrs, dtype
):
    # lr 0.1, seed 1 crosses the edge of stability near update 270, where any rounding
    # difference grows (0.44 relative by update 1000 for a 1e-15 one): equal runs stay equal
    rows = sweep(
        monkeypatch,
        tmp_path / "sweep",
        f"optim={optim}",
        f"optim.lr={lrs}",
        "seed=1,2",
        f"dtype={dtype}",
        *STEPS,
    )
    assert [r["status"] for r in rows] == ["ok"] * 4
    for job, row in enumerate(rows):
        mine = [r["loss"] for r in history(tmp_path / "sweep" / str(job))]
        alone = run_alone(
            tmp_path / f"solo{job}",
            f"optim={optim}",
            f"optim.lr={row['optim.lr']}",
            f"seed={row['seed']}",
            f"dtype={dtype}",
            *STEPS,
        )
        assert len(mine) == 1000 and mine == alone
        metrics = json.loads((tmp_path / f"solo{job}" / "metrics.json").read_text())
        for key in ("train/loss", "val/loss_best", "test/mse"):
            assert float(row[key]) == metrics[key], key


def test_momentum_and_weight_decay_batch_and_stay_bit_identical(tmp_path, monkeypatch, capsys):
    """Per-group optimizer options (momentum, weight decay, betas, ...) may differ within one
    batched run, added keys (+optim.weight_decay) too: one param group per set of values."""
    swept = ["optim.momentum=0,0.9", "+optim.weight_decay=0,0.001"]
    rows = sweep(monkeypatch, tmp_path / "sweep", *swept, "seed=3", *STEPS)
    assert "jobs #0..#3 as one run of 4" in capsys.readouterr().err
    for job, row in enumerate(rows):
        mine = [r["loss"] for r in history(tmp_path / "sweep" / str(job))]
        own = [f"optim.momentum={row['optim.momentum']}",
               f"+optim.weight_decay={row['+optim.weight_decay']}"]  # fmt: skip
        alone = run_alone(tmp_path / f"solo{job}", *own, "seed=3", *STEPS)
        assert mine == alone
    assert len({r["train/loss"] for r in rows}) == 4  # four different runs


def test_per_run_learning_rates_without_exact_agree_to_rounding(tmp_path, monkeypatch):
    """hydra.launcher.exact=false: one optimizer step at rate 1 for all runs, each run's change
    scaled by its rate (gradlab.optim.PerRunLearningRates): <= 1e-6 relative in float64."""
    args = ["optim=adam", "optim.lr=0.003,0.01", "seed=1", "dtype=float64"]
    rows = sweep(monkeypatch, tmp_path / "sweep", *args, "hydra.launcher.exact=false", *STEPS)
    for job, row in enumerate(rows):
        mine = [r["loss"] for r in history(tmp_path / "sweep" / str(job))]
        alone = run_alone(tmp_path / f"solo{job}", "optim=adam", f"optim.lr={row['optim.lr']}",
                     "seed=1", "dtype=float64", *STEPS)  # fmt: skip
        assert mine != alone and max_rel(mine, alone) <= 1e-6


def test_one_learning_rate_many_seeds(tmp_path, monkeypatch):
    args = ["seed=1,2,3", "optim.lr=0.05", *STEPS]
    rows = sweep(monkeypatch, tmp_path / "sweep", *args)
    for job, row in enumerate(rows):
        mine = [r["loss"] for r in history(tmp_path / "sweep" / str(job))]
        alone = run_alone(tmp_path / f"solo{job}", f"seed={row['seed']}", "optim.lr=0.05", *STEPS)
        assert mine == alone  # bit-identical at every update (float32)
        metrics = json.loads((tmp_path / f"solo{job}" / "metrics.json").read_text())
        for key in ("train/loss", "val/loss_best", "test/mse"):
            assert float(row[key]) == metrics[key], key


def test_exact_false_stays_close_to_solo_runs(tmp_path, monkeypatch):
    """hydra.launcher.exact=false: torch's batched matmul, which may round small products in
    another order (on some CPUs it does, on others not): within 1 ulp of the solo run at
    update 0, still close after 1000 updates."""
    args = ["seed=1,2", "optim.lr=0.05", "hydra.launcher.exact=false", *STEPS]
    rows = sweep(monkeypatch, tmp_path / "sweep", *args)
    mine = [r["loss"] for r in history(tmp_path / "sweep" / "0")]
    alone = run_alone(tmp_path / "solo", f"seed={rows[0]['seed']}", "optim.lr=0.05", *STEPS)
    assert max_rel(mine[:1], alone[:1]) <= 2.5e-7 and max_rel(mine, alone) <= 1e-4


def test_exact_auto_batches_big_groups_and_says_so(tmp_path, monkeypatch, capsys):
    """The default, hydra.launcher.exact=auto: a group of at most exact_up_to runs is exact
    (bit-identical to its solo runs, no word of it); a bigger one whose runs differ only in
    seed and learning rate trains with batched matmuls and its line says so; one whose runs
    differ in another option stays exact."""
    steps = ["trainer.max_steps=50", "print_config=false", "logger=none"]
    up_to = "hydra.launcher.exact_up_to=3"
    sweep(monkeypatch, tmp_path / "small", "seed=1,2,3", "optim.lr=0.05", up_to, *steps)
    assert "exact=auto" not in capsys.readouterr().err
    alone = run_alone(tmp_path / "solo", "seed=3", "optim.lr=0.05", *steps)
    assert [r["loss"] for r in history(tmp_path / "small" / "2")] == alone
    sweep(monkeypatch, tmp_path / "big", "seed=1,2,3,4", "optim.lr=0.05", up_to, *steps)
    err = capsys.readouterr().err
    assert "jobs #0..#3 as one run of 4 (hydra.launcher.exact=auto: more than 3 runs" in err
    assert max_rel([r["loss"] for r in history(tmp_path / "big" / "2")], alone) <= 1e-4
    sweep(monkeypatch, tmp_path / "momentum", "seed=1,2", "optim.momentum=0,0.5", up_to, *steps)
    assert "exact=auto" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep(monkeypatch, tmp_path / "bad", "seed=1,2", "hydra.launcher.exact=maybe", *steps)
    err = capsys.readouterr().err
    assert "error: hydra.launcher.exact: true, false or auto; got 'maybe'" in err


@pytest.mark.parametrize("lrs", ["0.05", "0.02,0.05"])
def test_exact_false_jobs_keep_checkpoints_of_their_own(tmp_path, monkeypatch, lrs):
    """hydra.launcher.exact=false: each job's last.ckpt holds its slice of the stacked weights
    and of the group's optimizer state (Adam's moments at its index, its own rate): eval.py
    gives its test metrics, and ckpt_path= resumes it as a solo run (one rate: the plain
    optimizer over the stacked runs; two: PerRunLearningRates)."""
    common = ["optim=adam", "trainer.max_steps=200", "print_config=false", "logger=none"]
    args = [f"optim.lr={lrs}", "seed=1,2", "hydra.launcher.exact=false", *common]
    rows = sweep(monkeypatch, tmp_path / "sweep", *args)
    job, lr = tmp_path / "sweep" / "1", lrs.split(",")[0]  # job 1: the first rate, seed 2
    ckpt = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)
    (group,) = ckpt["optimizer_states"][0]["param_groups"]
    assert group["lr"] == float(lr)
    assert (
        ckpt["optimizer_states"][0]["state"][0]["exp_avg"].shape
        == ckpt["state_dict"]["model.0_weight"].shape
    )
    monkeypatch.setattr(sys, "argv", ["eval.py", f"ckpt_path={job}/checkpoints/last.ckpt",
                                      f"hydra.run.dir={tmp_path / 'eval'}"])  # fmt: skip
    commands.evaluate()
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert max_rel([evaluated["test/mse"]], [float(rows[1]["test/mse"])]) <= 1e-5
    own = [f"optim.lr={lr}", "seed=2", *common[:1]]
    resumed = run_train(tmp_path / "resumed", *own, "trainer.max_steps=300", *common[2:],
                        f"ckpt_path={job}/checkpoints/last.ckpt")  # fmt: skip
    assert resumed["status"] == "ok" and resumed["step"] == 300


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("optim=lbfgs", "optim: LBFGS is a minimizer"),
        ("experiment=quadratic", "model: gradlab.models.Quadratic has no run dimension"),
    ],
)
def test_jobs_that_cannot_be_batched_run_alone_and_say_why(
    tmp_path, monkeypatch, capsys, override, why
):
    rows = sweep(monkeypatch, tmp_path, override, "optim.lr=0.5,1", "trainer.max_steps=5",
                 "print_config=false", "logger=none")  # fmt: skip
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert f"one at a time: {why}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("debug", "why"),
    [("fdr", "trainer.fast_dev_run: "), ("profiler", "trainer.profiler: ")],
)
def test_debug_jobs_run_alone_and_write_what_their_solo_runs_write(
    tmp_path, monkeypatch, capsys, debug, why
):
    """debug=fdr (a solo run writes metrics.json only) and debug=profiler (a profile of each
    run, in its own directory) run each job as its solo run, with a line saying why: each
    job writes the files the basic launcher's job writes."""
    args = [f"debug={debug}", "seed=1,2", "trainer.max_steps=5", "print_config=false",
            "logger=none"]  # fmt: skip
    rows = sweep(monkeypatch, tmp_path / "batched", *args)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert f"#0, #1 one at a time: {why}" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/a"])
    commands.train()
    for job in ("0", "1"):
        files = [sorted(p.name for p in (tmp_path / d / job).iterdir()) for d in ("batched", "a")]
        assert files[0] == files[1], job
        assert ("fit-profiler.txt" in files[0]) == (debug == "profiler")


def test_a_model_that_does_not_take_the_data_is_one_config_line(tmp_path, monkeypatch, capsys):
    """The pipeline's check that the model takes the data runs for a group as for a solo
    run: one ``error: model: ...`` line and exit code 2 before training, not a traceback."""
    with pytest.raises(SystemExit) as stop:
        sweep(monkeypatch, tmp_path, "data=sine", "optim.lr=0.1,0.2", *STEPS)
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: model: does not take this data's inputs (1 features")


def test_a_job_directory_is_written_as_its_own_run_writes_it(tmp_path, monkeypatch):
    sweep(monkeypatch, tmp_path, "optim.lr=0.1,3", "trainer.max_steps=50", "print_config=false")
    for job in ("0", "1"):
        assert (tmp_path / job / ".hydra" / "overrides.yaml").is_file()
        assert (tmp_path / job / "history.csv").is_file()
    assert (tmp_path / "0" / "tensorboard" / "lr=0.1").is_dir()
    diverged = json.loads((tmp_path / "1" / "metrics.json").read_text())
    assert diverged["status"] == "diverged" and "diverged at step" in diverged["error"]
    assert len(history(tmp_path / "1")) == diverged["step"]


def test_stop_tol_stops_each_run_on_its_own_loss(tmp_path, monkeypatch):
    """module.stop_tol in a batched group: each run stops where its solo run stops (its
    parameters frozen, its history ended, validated there); metrics.json and history.csv
    equal the solo run's, and the group ends when the last run stops."""
    from test_dashboards import scalars

    args = ["module.stop_tol=2e-5", "trainer.max_steps=3000", "trainer.val_check_interval=100",
            "print_config=false", "logger=tensorboard", "callbacks.figures=null"]  # fmt: skip
    rows = sweep(monkeypatch, tmp_path / "sweep", "seed=1,2", "optim.lr=0.05,0.1", *args)
    steps = set()
    for job, row in enumerate(rows):
        lr, seed = row["optim.lr"], row["seed"]
        batched = tmp_path / "sweep" / str(job)
        solo = tmp_path / f"solo{job}"
        run_alone(solo, f"seed={seed}", f"optim.lr={lr}", *args)
        mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (batched, solo))
        mine.pop("wall_time_s"), theirs.pop("wall_time_s")
        assert mine == theirs, job
        assert history(batched) == history(solo)
        # the same curves at the same steps, the stop included
        label = f"seed={seed},lr={lr}"
        assert scalars(batched / "tensorboard" / label) == scalars(solo / "tensorboard"), job
        steps.add(theirs["step"])
        # its last.ckpt and best.ckpt are the solo run's: taken where it stopped (weights,
        # optimizer state, step count, loop counters: validated there), not where the group
        # ended
        for name in ("last.ckpt", "best.ckpt"):
            step = torch.load(batched / "checkpoints" / name, weights_only=False)["global_step"]
            assert step == metrics_step(solo), job
        same_checkpoints(batched, solo)
    assert len(steps) > 1 and max(steps) < 3000  # the runs stopped at their own updates


def test_max_time_bounds_the_group(tmp_path, monkeypatch):
    """trainer.max_time holds for the batched group: every run stops at the same update,
    well before max_steps, and is written as a finished run."""
    rows = sweep(monkeypatch, tmp_path, "seed=1,2", "+trainer.max_time=00:00:00:02",
                 "trainer.max_steps=10000000", "print_config=false", "logger=none")  # fmt: skip
    assert [r["status"] for r in rows] == ["ok", "ok"]
    steps = {int(r["step"]) for r in rows}
    assert len(steps) == 1 and 0 < steps.pop() < 10000000
    # each job's last.ckpt holds Lightning's Timer state beside its ModelCheckpoint's, as its
    # solo run's does (resumed, the run goes on with the time it has left)
    run_train(tmp_path / "solo", "+trainer.max_time=00:00:00:01", "trainer.max_steps=10000000",
              "print_config=false", "logger=none", "callbacks.figures=null")  # fmt: skip
    mine, theirs = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=False)["callbacks"]
                    for d in (tmp_path / "0", tmp_path / "solo"))  # fmt: skip
    assert list(mine) == list(theirs) and "Timer" in mine
    assert mine["Timer"]["time_elapsed"]["train"] >= 2


def test_a_batched_jobs_checkpoint_is_its_solo_runs(tmp_path, monkeypatch):
    """Every batched job writes checkpoints/last.ckpt as its solo run would: eval.py gives the
    solo run's test metrics, and ckpt_path= resumes it to equal an uninterrupted solo run."""
    common = ["optim=adam", "optim.lr=0.01", "trainer.val_check_interval=100",
              "print_config=false", "logger=none"]  # fmt: skip
    rows = sweep(monkeypatch, tmp_path / "sweep", "seed=1,2", "trainer.max_steps=300", *common)
    for job, row in enumerate(rows):
        ckpt = tmp_path / "sweep" / str(job) / "checkpoints" / "last.ckpt"
        solo = run_train(tmp_path / f"solo{job}", f"seed={row['seed']}", "trainer.max_steps=300",
                         *common, "callbacks.figures=null")  # fmt: skip
        monkeypatch.setattr(sys, "argv", ["eval.py", f"ckpt_path={ckpt}",
                                          f"hydra.run.dir={tmp_path / f'eval{job}'}"])  # fmt: skip
        commands.evaluate()
        evaluated = json.loads((tmp_path / f"eval{job}" / "metrics.json").read_text())
        for key in ("test/loss", "test/mse", "test/r2"):
            assert evaluated[key] == solo[key], (job, key)
        # best.ckpt: the solo run's weights, optimizer state and histories at its best update
        mine, theirs = (torch.load(d / "checkpoints" / "best.ckpt", weights_only=False)
                        for d in (ckpt.parents[1], tmp_path / f"solo{job}"))  # fmt: skip
        assert mine["global_step"] == theirs["global_step"]
        mine["gradlab"].pop("config"), theirs["gradlab"].pop("config")
        for key in ("state_dict", "optimizer_states", "gradlab"):
            assert same(mine[key], theirs[key]), key
    # resumed to 600 updates: the solo run of 600 updates, bit for bit
    more = [f"seed={rows[1]['seed']}", "trainer.max_steps=600", *common, "callbacks.figures=null"]
    ckpt = tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt"
    resumed = run_train(tmp_path / "resumed", *more, f"ckpt_path={ckpt}")
    uninterrupted = run_train(tmp_path / "uninterrupted", *more)
    resumed.pop("wall_time_s"), uninterrupted.pop("wall_time_s")
    assert resumed == uninterrupted
    assert history(tmp_path / "resumed") == history(tmp_path / "uninterrupted")


def test_a_batched_jobs_checkpoints_are_its_solo_runs_key_for_key(tmp_path, monkeypatch):
    """Each job's last.ckpt and best.ckpt hold what its solo run's hold, key for key: weights,
    optimizer state, histories, Lightning's loop counters and epoch, the ModelCheckpoint
    state (but for its directory). Seed 3's last validation improves (its last.ckpt is saved
    with its best.ckpt), seed 4's does not (saved at the train end, after the epoch ended)."""
    args = ["trainer.max_steps=300", "trainer.val_check_interval=100", "print_config=false",
            "logger=none"]  # fmt: skip
    sweep(monkeypatch, tmp_path / "sweep", "seed=3,4", *args)
    ends = []
    for job, seed in enumerate((3, 4)):
        batched, solo = tmp_path / "sweep" / str(job), tmp_path / f"solo{job}"
        run_train(solo, f"seed={seed}", *args, "callbacks.figures=null")
        same_checkpoints(batched, solo)
        last = torch.load(solo / "checkpoints" / "last.ckpt", weights_only=False)
        losses = [loss for _, loss in last["gradlab"]["val_history"]]
        ends.append(losses[-1] == min(losses))
    assert ends == [True, False]  # both ways of saving last.ckpt are checked


def test_a_batched_sweep_writes_the_basic_sweeps_job_directories(tmp_path, monkeypatch):
    """The batched launcher writes each job's directory itself (not through Hydra's run_job)
    and writes what the basic launcher's job writes: the same files, ``.hydra/config.yaml``
    and ``overrides.yaml`` byte for byte, ``hydra.yaml`` but for the launcher, metrics.json
    (``==`` but wall time), history.csv, the TensorBoard run's name and its scalars."""
    import yaml
    from test_dashboards import scalars

    args = ["optim.lr=0.05,0.1", "seed=1,2", "trainer.max_steps=200", "print_config=false",
            "trainer.val_check_interval=100", "logger=tensorboard"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/a"])
    commands.train()
    sweep(monkeypatch, tmp_path / "b", *args)

    def hydra_node(job, sweep_dir):
        text = (job / ".hydra" / "hydra.yaml").read_text().replace(str(sweep_dir), "SWEEP")
        node = yaml.safe_load(text)["hydra"]
        del node["launcher"], node["runtime"]["choices"]["hydra/launcher"]
        node["overrides"]["hydra"] = [o for o in node["overrides"]["hydra"] if "launcher" not in o]
        return node

    for job in ("0", "1", "2", "3"):
        basic, batched = tmp_path / "a" / job, tmp_path / "b" / job
        files = [sorted(p.relative_to(d).parts[:2] for p in d.rglob("*")
                        if "events" not in p.name and p.name != ".gradlab.lock")
                 for d in (basic, batched)]  # fmt: skip
        assert files[0] == files[1], job
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (basic / name).read_bytes() == (batched / name).read_bytes(), name
        assert hydra_node(basic, tmp_path / "a") == hydra_node(batched, tmp_path / "b")
        mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (batched, basic))
        mine.pop("wall_time_s"), theirs.pop("wall_time_s")
        assert mine == theirs, job
        assert history(batched) == history(basic)
        (run,) = [p.name for p in (basic / "tensorboard").iterdir()]
        assert [p.name for p in (batched / "tensorboard").iterdir()] == [run]
        assert scalars(batched / "tensorboard") == scalars(basic / "tensorboard"), job
        hparams = [(d / "tensorboard" / run / "hparams.yaml").read_text() for d in (basic, batched)]
        keys = [line.split(":")[0] for line in hparams[0].splitlines()[:2]]
        assert hparams[0] == hparams[1] and keys == ["optim/lr", "seed"]  # the swept keys first
        ckpts = [torch.load(d / "checkpoints" / "last.ckpt", weights_only=False)
                 for d in (basic, batched)]  # fmt: skip
        configs = [c["gradlab"]["config"] for c in ckpts]
        sweeps = (str(tmp_path / "a"), str(tmp_path / "b"))
        assert configs[0]["paths"]["output_dir"] == str(basic)  # each job's, resolved
        assert json.dumps(configs[0]).replace(*sweeps) == json.dumps(configs[1]), job
        (state,) = [{k: str(v) for k, v in c["callbacks"].items()} for c in ckpts[1:]]
        assert {k: str(v).replace(*sweeps) for k, v in ckpts[0]["callbacks"].items()} == state


def test_a_batched_sweep_follows_hydras_job_directory_settings(tmp_path, monkeypatch):
    """hydra.sweep.subdir and hydra.output_subdir as Hydra's own launchers follow them."""
    args = ["seed=1,2", "trainer.max_steps=20", "print_config=false", "logger=none"]
    sweep(monkeypatch, tmp_path / "a", *args, "hydra.sweep.subdir=${hydra.job.override_dirname}")
    for seed in (1, 2):  # (Hydra writes print_config=False: the grid's value as a string)
        job = tmp_path / "a" / f"logger=none,print_config=False,seed={seed},trainer.max_steps=20"
        assert json.loads((job / "metrics.json").read_text())["status"] == "ok"
        assert (job / ".hydra" / "overrides.yaml").is_file()
    sweep(monkeypatch, tmp_path / "b", *args, "hydra.output_subdir=null")
    assert (tmp_path / "b" / "1" / "metrics.json").is_file()
    assert not (tmp_path / "b" / "1" / ".hydra").exists()


@pytest.mark.parametrize(("lr", "every", "saved_at"), [("1", 10, 10), ("3", 20, 0)])
def test_a_diverged_jobs_checkpoints_are_its_solo_runs(tmp_path, monkeypatch, lr, every, saved_at):
    """A batched run that diverges keeps what its solo run keeps (Lightning writes last.ckpt
    at the start and then with each new best.ckpt): lr 1 diverges at update 28, after its
    one improving validation (update 10: last and best), lr 3 at update 15, before any
    validation (the start: last only); key for key, loop counters included."""
    from gradlab.errors import DivergenceError

    common = ["seed=1", "trainer.max_steps=100", f"trainer.val_check_interval={every}",
              "print_config=false", "logger=none"]  # fmt: skip
    rows = sweep(monkeypatch, tmp_path / "sweep", f"optim.lr=0.1,{lr}", *common)
    assert [r["status"] for r in rows] == ["ok", "diverged"]
    with pytest.raises(DivergenceError):
        run_train(tmp_path / "solo", f"optim.lr={lr}", *common, "callbacks.figures=null")
    names = sorted(p.name for p in (tmp_path / "solo" / "checkpoints").iterdir())
    assert sorted(p.name for p in (tmp_path / "sweep" / "1" / "checkpoints").iterdir()) == names
    for name in names:
        saved = torch.load(tmp_path / "solo" / "checkpoints" / name, weights_only=False)
        assert saved["global_step"] == saved_at, name
    same_checkpoints(tmp_path / "sweep" / "1", tmp_path / "solo", names)


def test_scheduled_jobs_batch_and_keep_schedules_of_their_own(tmp_path, monkeypatch, capsys):
    """A scheduler in a group schedules each rate's param group as a solo run's one group:
    each job's last.ckpt and best.ckpt hold what its solo run's hold, key for key (its
    scheduler's base_lrs and _last_lr, its optimizer's scheduled rate); with several rates
    hydra.launcher.exact=false trains exact, with a line saying so."""
    args = ["scheduler=cosine", "trainer.max_steps=120", "trainer.val_check_interval=40",
            "print_config=false", "logger=none"]  # fmt: skip
    sweep(monkeypatch, tmp_path / "sweep", "optim.lr=0.05,0.1", "seed=1",
          "hydra.launcher.exact=false", *args)  # fmt: skip
    assert "as one run of 2 (a scheduler over several rates: exact" in capsys.readouterr().err
    for job, lr in enumerate(("0.05", "0.1")):
        solo = tmp_path / f"solo{job}"
        run_train(solo, f"optim.lr={lr}", "seed=1", *args, "callbacks.figures=null")
        same_checkpoints(tmp_path / "sweep" / str(job), solo)
        (scheduler,) = torch.load(solo / "checkpoints" / "last.ckpt")["lr_schedulers"]
        assert scheduler["base_lrs"] == [float(lr)] and scheduler["_last_lr"][0] < float(lr)


def test_dead_units_of_batched_jobs_are_their_solo_runs(tmp_path, monkeypatch, capsys):
    """callbacks.dead_units in a batched group: each job warns and logs ``dead_units`` as the
    same job of a basic sweep does (TensorBoard scalars equal, the warning lines alike)."""
    from test_dashboards import scalars

    args = ["model.activation=relu", "model.sizes=[2,6,1]", "optim.lr=0.05,0.2", "seed=1,2",
            "trainer.max_steps=300", "print_config=false", "logger=tensorboard"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/a"])
    commands.train()
    basic = [line for line in capsys.readouterr().out.splitlines() if "dead ReLU" in line]
    sweep(monkeypatch, tmp_path / "b", *args)
    batched = [line for line in capsys.readouterr().out.splitlines() if "dead ReLU" in line]
    assert sorted(batched) == sorted(basic) and basic  # some runs have dead units
    for job in ("0", "1", "2", "3"):
        tags = scalars(tmp_path / "b" / job / "tensorboard")
        assert "dead_units" in str(tags)
        assert tags == scalars(tmp_path / "a" / job / "tensorboard"), job


@pytest.mark.parametrize("instrument", ["callbacks=dynamics", "callbacks=trace",
                                        "callbacks.figures.in_sweeps=true"])  # fmt: skip
def test_instrumented_batched_jobs_write_what_their_basic_sweep_jobs_write(
    tmp_path, monkeypatch, capsys, instrument
):
    """Every instrument callback's output in a batched sweep's jobs (trained as one group)
    is what the basic launcher's jobs write: the same files (figures byte for byte),
    metrics.json (the sharpness's final values), history.csv and TensorBoard scalars (tags
    and values)."""
    files = same_jobs_as_basic_sweep(tmp_path, monkeypatch, instrument)
    assert "as one run of 2" in capsys.readouterr().err
    assert any(f.endswith(".png") for f in files)
    if "dynamics" in instrument:
        assert {"plots/dynamics.png", "plots/landscape.png"} <= set(files)


def traced(out: str) -> list[str]:
    """The lines ``callbacks.trace`` prints: its blocks and its loss lines."""
    pattern = re.compile(r"(step|iteration) \d+: loss |  (output|per-sample|\d+_(weight|bias)) ")
    return [line for line in out.splitlines() if pattern.match(line)]


def test_a_batched_jobs_trace_is_what_its_solo_run_prints(tmp_path, monkeypatch, capsys):
    """callbacks.trace in a group: each job prints, in job order, the blocks and loss lines
    its solo run prints (the basic launcher's job), digit for digit; a run that diverges
    (lr 30, at update 9) prints nothing after, as its solo run stops there."""
    args = ["experiment=sincos", "seed=1,2", "optim.lr=0.5,30", "trainer.max_steps=30",
            "callbacks.trace.first=3", "callbacks.trace.every=10",
            "callbacks.trace.loss_every=4", "print_config=false", "logger=none"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/a"])
    commands.train()
    basic = traced(capsys.readouterr().out)
    rows = sweep(monkeypatch, tmp_path / "b", *args)
    out = capsys.readouterr()
    assert "jobs #0..#3 as one run of 4" in out.err
    assert [r["status"] for r in rows] == ["ok", "diverged", "ok", "diverged"]
    assert traced(out.out) == basic
    assert sum(line.startswith("step 20:") for line in basic) == 2  # the runs that went on
    assert sum(line.startswith("step 2:") for line in basic) == 4


@pytest.mark.parametrize("setting", [
    "callbacks.lr_monitor=null", "callbacks.history=null", "callbacks.model_checkpoint=null",
    "callbacks=none", "logger=many", "logger=many model.activation=relu",
    "logger=many loss=sse", "logger=many loss=sse optim.lr=0.001,0.03",
    "logger=many optim=adam optim.lr=1,3",
    "logger=many module.stop_tol=1e-2", "experiment=wave1d_adam",
    "model.activation=sigmoid data.n_train=77", "callbacks.figures.in_sweeps=true",
    "logger=many loss=sse optim.lr=0.001,0.03 callbacks.figures.in_sweeps=true",
    "optim.lr=0.1,3", "trainer.num_sanity_val_steps=2",
    "experiment=poly_manual", "experiment=poly_nn", "experiment=logreg",
    "scheduler=step scheduler.step_size=7 logger=many trainer.log_every_n_steps=10",
    "scheduler=cosine optim=adam optim.lr=0.01,0.03 logger=many trainer.log_every_n_steps=10",
    "callbacks=dynamics logger=many", "callbacks=dynamics logger=many optim.lr=0.1,3",
    "callbacks=dynamics logger=many module.stop_tol=1e-2",
    "callbacks=dynamics optim.lr=0.02,0.05,0.1,0.2", "experiment=sincos callbacks=dynamics",
    "experiment=poly_manual callbacks=dynamics logger=many",
    "callbacks.figures.plot_every_n_steps=20 callbacks.figures.in_sweeps=true loss=sse "
    "optim.lr=0.001,0.03 logger=many",
])  # fmt: skip
def test_batched_jobs_write_what_basic_sweep_jobs_write(tmp_path, monkeypatch, capsys, setting):
    """The callbacks a group reproduces (history, checkpoints, learning-rate monitor), each
    switched off: the batched jobs (trained as one group) write what the basic launcher's
    jobs write, no lr-SGD scalar, history.csv or checkpoint more. With TensorBoard and CSV
    loggers each job's metrics.csv has its solo run's rows in their order: dead ReLU units
    at the train end (relu), a diverged run's every last loss and no learning rate before
    its first log step (sse: both diverge at update 16; at 0.03, one diverges at update 23,
    after a validation: it reports that one, the other run goes on), a rate set as an
    integer (adam), best.ckpt of runs that stop_tol stopped before any validation. Sigmoid
    units and 123 test points (wave1d_adam), 77 training points: every value bit for bit
    (each run's activations and matrix products computed in tensors of its own). Figures in
    sweeps: each job's plots/*.png, byte for byte (a diverged run's: where it diverged). A
    rate set as an integer names itself so in a diverged run's error (3, not 3.0); Lightning's
    sanity check before training validates nothing either launcher records. The notebooks'
    other models with a run dimension batch too, each run's products on its own slice: the
    polynomial with its hand-derived gradients (poly_manual), its nn.Linear form (poly_nn),
    logistic regression on 3 classes (logreg: log_softmax per run, accuracy). A scheduler:
    each run's learning rate logged as scheduled (its own rate's schedule). callbacks=dynamics
    run by run: each job's instruments log, in its CSV rows' order, what its solo run's log,
    a diverged run's up to its failure (no figures: its solo run fails first), a stopped
    run's to its stop (its figures drawn there), the polynomial's least-squares baseline;
    sincos's trace settings left without their callback (callbacks=dynamics replaced it) are
    no callback, as a solo run builds none."""
    files = same_jobs_as_basic_sweep(tmp_path, monkeypatch, setting)
    assert " as one run of " in capsys.readouterr().err
    if "in_sweeps" in setting:
        assert {"plots/fit.png", "plots/hidden_units.png"} <= set(files)
    assert ("history.csv" in files) == ("history" not in setting and "none" not in setting)
    assert any(f.endswith("metrics.csv") for f in files) == ("logger=many" in setting)
    if "scheduler" in setting:  # each rate logged is its scheduled one
        (table,) = (tmp_path / "b" / "1").rglob("metrics.csv")
        rows = list(csv.DictReader(table.open()))
        name = next(k for k in rows[0] if k.startswith("lr-"))
        assert len({r[name] for r in rows if r[name]}) > 2
    if "stop_tol" in setting:
        assert "checkpoints/best.ckpt" in files
    if "sse" in setting:
        diverged = json.loads((tmp_path / "b" / "1" / "metrics.json").read_text())
        assert diverged["status"] == "diverged" and diverged["step"] < 30
        assert ("val/loss_best" in diverged) == (diverged["step"] > 20)


def same_jobs_as_basic_sweep(tmp_path, monkeypatch, setting: str) -> list[str]:
    """Two jobs swept with the basic and the batched launcher (``setting``: overrides): the
    same files, metrics.json (but wall time), history.csv, TensorBoard scalars (tags and
    values), CSV logger rows and each checkpoint's ModelCheckpoint state; their files."""
    from test_dashboards import scalars

    rates = [] if "optim.lr" in setting else ["optim.lr=0.05,0.1"]
    args = ["logger=tensorboard", *setting.split(), *rates, "trainer.max_steps=60",
            "print_config=false", "trainer.val_check_interval=20"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/a"])
    commands.train()
    sweep(monkeypatch, tmp_path / "b", *args)
    for job in ("0", "1"):
        basic, batched = tmp_path / "a" / job, tmp_path / "b" / job
        files = [sorted(str(p.relative_to(d)) for p in d.rglob("*") if "events" not in p.name
                        and not p.name.startswith(".") and ".hydra" not in p.parts)
                 for d in (basic, batched)]  # fmt: skip
        assert files[0] == files[1], job
        mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (batched, basic))
        mine.pop("wall_time_s"), theirs.pop("wall_time_s")
        assert mine == theirs, job
        if (basic / "history.csv").is_file():
            assert history(batched) == history(basic)
        tags = scalars(batched / "tensorboard")
        assert tags == scalars(basic / "tensorboard") and tags, job
        saved = [n for n in ("last.ckpt", "best.ckpt") if (basic / "checkpoints" / n).is_file()]
        same_checkpoints(batched, basic, saved)  # key for key, loop counters included
        for table in [p.relative_to(basic) for p in basic.rglob("metrics.csv")]:
            rows = [list(csv.DictReader((d / table).open())) for d in (basic, batched)]
            for row in rows[0] + rows[1]:
                row.pop("wall_time_s")
            assert rows[0] == rows[1] and len(rows[0]) > 2, job
        for png in [p.relative_to(basic) for p in basic.rglob("plots/*.png")]:
            assert (batched / png).read_bytes() == (basic / png).read_bytes(), (job, png)
    return files[0]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping "
            "+callbacks.stop.monitor=val/loss",
            "callbacks.stop (lightning.pytorch.callbacks.EarlyStopping)",
        ),
        (
            "callbacks.lr_monitor.logging_interval=epoch",
            "callbacks.lr_monitor (lightning.pytorch.callbacks.LearningRateMonitor): logs per "
            "epoch",
        ),
        ("module.track_params=true", "module.track_params"),
        (
            "callbacks.model_checkpoint.save_top_k=2",
            "callbacks.model_checkpoint (gradlab.callbacks.RunCheckpoint)",
        ),
    ],
)
def test_callbacks_a_group_does_not_run_make_its_jobs_run_alone(
    tmp_path, monkeypatch, capsys, override, named
):
    """No configured callback is dropped: a job whose callback a batched group does not
    reproduce runs as its solo run, with a line naming the callback."""
    rows = sweep(monkeypatch, tmp_path, *override.split(), "optim.lr=0.1,0.2",
                 "trainer.max_steps=5", "print_config=false", "logger=none")  # fmt: skip
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert f"#0, #1 one at a time: {named}" in capsys.readouterr().err
