"""Hyperparameter search on current Optuna (hydra/sweeper=gradlab_optuna): results, pruning,
resuming a study, and one run per trial under DDP."""

import sys

import pytest
from conftest import cli
from omegaconf import OmegaConf

from gradlab import cli as commands

optuna = pytest.importorskip("optuna")

QUIET = ["print_config=false", "logger=none", "callbacks.figures=null"]


def search(monkeypatch, sweep_dir, *args):
    monkeypatch.setattr(
        sys,
        "argv",
        ["train.py", "hparams_search=sincos_lr", *QUIET, f"hydra.sweep.dir={sweep_dir}", *args],
    )
    commands.train()
    study = optuna.load_study(study_name="sincos_lr", storage=f"sqlite:///{sweep_dir}/optuna.db")
    return study, OmegaConf.load(sweep_dir / "optimization_results.yaml")


def test_six_trials_find_a_learning_rate_where_the_loss_is_lowest(tmp_path, monkeypatch):
    study, results = search(
        monkeypatch,
        tmp_path,
        "hydra.sweeper.n_trials=6",
        "trainer.max_steps=300",
        "hydra.sweeper.pruner=null",
    )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(study.trials) == 6 and len(complete) == 6
    best = min(complete, key=lambda t: t.value)
    assert results.best_params["optim.lr"] == best.params["optim.lr"]
    assert results.best_value == best.value
    # sincos trains fastest at lr ~0.1-0.5 in 300 updates; 1e-4 barely moves
    assert 0.02 < best.params["optim.lr"] <= 1.0
    worst = max(complete, key=lambda t: t.value)
    assert worst.params["optim.lr"] < best.params["optim.lr"]
    summary = (tmp_path / "summary.csv").read_text()
    assert summary.count(",ok,") == 6


def test_pruning_stops_an_obviously_bad_trial_early(tmp_path, monkeypatch):
    study, results = search(
        monkeypatch,
        tmp_path,
        "hydra.sweeper.n_trials=3",
        "trainer.max_steps=500",
        "hydra.sweeper.params={optim.lr: 'choice(0.1, 0.2, 1e-5)'}",
        "+hydra.sweeper.enqueue=[{optim.lr: 0.1}, {optim.lr: 0.2}, {optim.lr: 1e-5}]",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=100",
    )
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert max(study.trials[2].intermediate_values) == 100  # stopped at its first check
    assert results.trials.pruned == 1
    rows = (tmp_path / "summary.csv").read_text().strip().splitlines()
    assert ",pruned," in rows[3] and ",100," in rows[3]


def test_rerunning_the_command_continues_the_study(tmp_path, monkeypatch):
    args = ["hydra.sweeper.n_trials=2", "trainer.max_steps=50", "hydra.sweeper.pruner=null"]
    study, _ = search(monkeypatch, tmp_path, *args)
    assert [t.number for t in study.trials] == [0, 1]
    study, results = search(monkeypatch, tmp_path, *args)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert results.n_trials == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]


def test_search_under_ddp_runs_each_trial_once(tmp_path):
    r = cli(
        "train.py",
        "hparams_search=sincos_optuna",
        "trainer=ddp",
        "hydra.sweeper.n_trials=2",
        "trainer.max_steps=20",
        "hydra.sweeper.pruner=null",
        *QUIET,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="sincos_mlp", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 2
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").n_trials == 2


@pytest.mark.parametrize(
    "text",
    [
        "a=choice(1,2,5)",
        "a=range(1,10,4)",
        "a=range(0,1,0.3)",
        "a=range(5)",
        "a=range(10,1,-3)",
        "a=tag(log,range(1,10))",
    ],
)
def test_search_space_is_hydras_expansion(text):
    """Every value a distribution can give is one Hydra's basic sweeper would run, and every
    one of those can be given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gradlab.sweep.optuna_sweeper import distribution

    override = OverridesParser.create().parse_override(text)
    hydra_values = list(override.sweep_iterator())
    d = distribution(override)
    is_set = hasattr(d, "choices")
    got = list(d.choices) if is_set else list(range(d.low, d.high + 1, d.step))
    assert sorted(got) == sorted(hydra_values)
    if "log" in text:
        assert d.log


def test_interval_search_spaces():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from optuna.distributions import FloatDistribution, IntDistribution

    from gradlab.sweep.optuna_sweeper import distribution

    parse = OverridesParser.create().parse_override
    d = distribution(parse("a=tag(log,interval(1e-4,1))"))
    assert isinstance(d, FloatDistribution) and d.log and (d.low, d.high) == (1e-4, 1)
    width = distribution(parse("model.sizes.1=tag(int,interval(2,64))"))  # an integer key
    assert isinstance(width, IntDistribution) and (width.low, width.high) == (2, 64)
    assert distribution(parse("a=tag(log,int,interval(2,64))")).log
