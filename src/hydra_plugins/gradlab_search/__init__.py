"""Hydra finds plugins only in the ``hydra_plugins`` package: this shim names gradlab's Optuna
search sweeper (``hydra/sweeper=gradlab_optuna``), which lives in ``gradlab.sweep``."""

from gradlab.sweep import optuna_sweeper


class OptunaSearch(optuna_sweeper.OptunaSearch):
    """``gradlab.sweep.optuna_sweeper.OptunaSearch``."""
