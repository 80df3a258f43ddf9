"""Report a search trial's validation loss to its Optuna study as it trains; stop if pruned."""

import lightning as L

from gradlab.errors import Pruned


class TrialPruning(L.Callback):
    """At every validation: ``trial.report(val/loss, update)``, then ask the study's pruner
    (``hydra.sweeper.pruner``) whether to stop; a pruned run ends with status ``pruned``."""

    def __init__(self, storage: str, study: str, number: int, monitor: str = "val/loss"):
        self.storage_url, self.study_name, self.number = storage, study, number
        self.monitor = monitor
        self.trial = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        import optuna
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import instantiate

        pruner = optuna.pruners.NopPruner()  # the sweeper's pruner; null: no pruning
        if HydraConfig.initialized() and HydraConfig.get().sweeper.get("pruner"):
            pruner = instantiate(HydraConfig.get().sweeper.pruner)
        storage = optuna.storages.RDBStorage(self.storage_url)
        study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=pruner)
        study_id = storage.get_study_id_from_name(self.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        self.trial = optuna.trial.Trial(study, trial_id)

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        step, prune = pl_module.updates, False
        if trainer.is_global_zero:  # rank 0 talks to the study; every rank stops together
            self.trial.report(float(value), step)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            raise Pruned(
                f"search: trial {self.number} pruned at step {step} "
                f"({self.monitor} {float(value):.4g})"
            )
