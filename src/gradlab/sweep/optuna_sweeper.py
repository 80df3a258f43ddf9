"""A Hydra Sweeper that asks Optuna for trials and tells it their results, with pruning.

Search spaces are declared as Hydra sweeps in ``hydra.sweeper.params`` (or on the command
line): ``choice(a, b)`` is categorical, ``range(1, 10)`` an int, ``interval(0.01, 0.5)`` a
float, ``tag(log, interval(1e-4, 1))`` a log-scaled one. The study lives in SQLite in the
sweep directory, so re-running the command continues it. Each trial's job reports its
validation loss as it trains (``gradlab.callbacks.TrialPruning``); the configured pruner
stops bad trials early, and the study records them as pruned.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError


@dataclass
class OptunaSearchConf:
    _target_: str = "hydra_plugins.gradlab_search.OptunaSearch"  # the shim Hydra finds
    direction: str = "minimize"
    study_name: str = "search"
    storage: str | None = None  # default: sqlite:///<sweep dir>/optuna.db
    n_trials: int = 20
    n_jobs: int = 1  # trials handed to the launcher at a time
    sampler: Any = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None}
    )
    pruner: Any = field(
        default_factory=lambda: {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 2}
    )
    params: Any = None
    enqueue: Any = None  # trials to run first, e.g. [{optim.lr: 0.1}] (known-good settings)


ConfigStore.instance().store(
    group="hydra/sweeper", name="gradlab_optuna", node=OptunaSearchConf, provider="gradlab"
)


def distribution(override: Override):
    """The Optuna distribution of one Hydra sweep override (None: a fixed value)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not override.is_sweep_override():
        return None
    value = override.value()
    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):  # plain values as they are; lists as their text
        values = list(override.sweep_iterator())
        if all(v is None or isinstance(v, bool | int | float | str) for v in values):
            return CategoricalDistribution(values)
        return CategoricalDistribution(list(override.sweep_string_iterator()))
    if isinstance(value, RangeSweep):  # exactly the values Hydra's basic sweeper would run
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{override.get_key_element()}: {override} is an empty range")
        ints = all(isinstance(v, int) for v in values)
        if ints and log and value.step == 1 and values[0] > 0:  # Optuna: log needs step 1
            return IntDistribution(values[0], values[-1], log=True)
        if ints and not log:
            step = value.step if len(values) > 1 else 1
            return IntDistribution(min(values), max(values), step=abs(step))
        return CategoricalDistribution(values)  # float steps (0.8999999999999999 as Hydra)
    if isinstance(value, IntervalSweep):  # Hydra parses the bounds as floats: tag(int, ...)
        if "int" in getattr(value, "tags", set()):
            return IntDistribution(round(value.start), round(value.end), log=log)
        return FloatDistribution(value.start, value.end, log=log)
    raise ValueError(f"{override.get_key_element()}: unsupported search space {override}")


def build(node):
    """A sampler or pruner: Hydra has usually built it already, with the sweeper."""
    return instantiate(node) if isinstance(node, dict | DictConfig) else node


class OptunaSearch(Sweeper):
    def __init__(
        self, direction, study_name, storage, n_trials, n_jobs, sampler, pruner, params, enqueue
    ):
        self.direction, self.study_name, self.storage = direction, study_name, storage
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"hydra.sweeper.{key}: must be a positive integer, got {value!r}")
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.sampler_conf, self.pruner_conf, self.params = sampler, pruner, params or {}
        self.enqueue = enqueue or []

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self.storage or f"sqlite:///{self.sweep_dir.resolve() / 'optuna.db'}"
        try:
            study = optuna.create_study(
                study_name=self.study_name,
                storage=storage,
                sampler=build(self.sampler_conf),
                pruner=build(self.pruner_conf) or optuna.pruners.NopPruner(),  # null: no pruning
                direction=self.direction,
                load_if_exists=True,  # the same command continues the study
            )
        except Exception as e:  # noqa: BLE001 - a corrupt, locked or foreign study file
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(
                f"hydra.sweeper.storage: cannot open the study {self.study_name!r} in {storage} "
                f"({reason}); move the file away or choose another hydra.sweep.dir"
            ) from e
        texts = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space, fixed = {}, {}
        for o in OverridesParser.create().parse_overrides(texts):
            dist = distribution(o)
            if dist is None:
                fixed[o.get_key_element()] = f"{o.get_key_element()}={o.get_value_element_as_str()}"
            else:
                space[o.get_key_element()] = dist
                fixed.pop(o.get_key_element(), None)
        if not study.trials:  # a fresh study: the requested trials first
            for params in self.enqueue:
                study.enqueue_trial(dict(params))
        done = 0
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [
                [
                    *fixed.values(),
                    *(f"{k}={t.params[k]}" for k in space),
                    f"search.storage='{storage}'",
                    f"search.study={self.study_name}",
                    f"search.trial={t.number}",
                ]
                for t in trials
            ]
            returns = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns, strict=True):
                self.tell(study, trial, ret)
            done += len(trials)
        self.write_results(study)

    def tell(self, study, trial, ret) -> None:
        """COMPLETE with the job's value (inf for a diverged one), PRUNED, or FAIL."""
        from optuna.trial import TrialState

        metrics_file = Path(ret.hydra_cfg.hydra.runtime.output_dir) / "metrics.json"
        status = (
            json.loads(metrics_file.read_text()).get("status") if metrics_file.is_file() else None
        )
        if status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
            return
        try:
            value = float(ret.return_value)
        except Exception:  # noqa: BLE001 - a failed job (or no metric) fails its trial only
            study.tell(trial, state=TrialState.FAIL)
            return
        if math.isnan(value):
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)

    def write_results(self, study) -> None:
        from optuna.trial import TrialState

        states = [t.state for t in study.trials]
        counts = {s.name.lower(): states.count(s) for s in TrialState if states.count(s)}
        results = {"name": "optuna", "n_trials": len(study.trials), "trials": counts}
        try:
            results.update(best_params=study.best_params, best_value=study.best_value)
        except ValueError:
            results["best_params"] = None  # no trial completed
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")
        best, where = results.get("best_value"), results["best_params"]
        print(f"search: {len(study.trials)} trials ({counts}); best {best} at {where}")
