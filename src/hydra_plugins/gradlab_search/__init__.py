"""gradlab's Hydra sweeper over Optuna's ask-and-tell API (``hydra/sweeper=gradlab_optuna``)."""
