"""Run gradlab from Python or Jupyter: ``gradlab.run("experiment=sincos")`` composes the config
as ``train.py`` does (same checks, same files on disk) and returns the trained run.

    import gradlab
    r = gradlab.run("model.sizes=[2,8,1]", "optim.lr=0.2", "trainer.max_steps=500")
    r.metrics["test/mse"], r.history.shape, r.model
    r.figures()["fit"]        # a matplotlib figure: Jupyter shows it inline
"""

import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from omegaconf import DictConfig

from .errors import ConfigError, error_line


@dataclass
class Run:
    """A finished run: its numbers, its history, its trained model and where its files are."""

    metrics: dict
    config: DictConfig
    dir: Path
    module: "object"  # the trained GradLabModule
    data: "object"  # its data module

    @property
    def history(self) -> torch.Tensor:
        """The training loss of every update, shape (updates, restarts)."""
        return self.module.history()

    @property
    def model(self) -> torch.nn.Module:
        """The trained model (with restarts: the best restart as a single model)."""
        return self.model_of(self.module.best_restart)

    def model_of(self, restart: int) -> torch.nn.Module:
        from .models.restarts import solo

        model = self.module.model
        return solo(model, restart) if self.module.restarts > 1 else model

    def figures(self) -> dict:
        """The run's figures as matplotlib figures (loss curve, fit, hidden units, ...)."""
        from .callbacks.figures import model_figures
        from .plots import plot_loss, plt

        figures = {"loss": plot_loss(self.history)}
        figures.update(model_figures(self.module, self.data))
        for fig in figures.values():  # closed: Jupyter shows one when a cell returns it
            plt.close(fig)
        return figures

    def __repr__(self) -> str:
        shown = {k: round(v, 6) for k, v in self.metrics.items() if isinstance(v, float)}
        return f"Run(dir={str(self.dir)!r}, status={self.metrics.get('status')!r}, {shown})"


@contextmanager
def process_state_kept():
    """Random number generators (python, numpy, torch) as they were before the run; the
    default dtype and threads are restored by ``torch_settings``."""
    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def run(*overrides: str, output_dir: str | Path | None = None) -> Run:
    """Train one run as ``python train.py OVERRIDES...`` would and return it. Bad input raises
    ``gradlab.errors.ConfigError`` with the same one-line message the command prints."""
    from hydra.errors import HydraException

    from .config import compose_config, setup_hydra
    from .train import run_training

    setup_hydra()
    if output_dir is None:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        output_dir = Path("logs") / "train" / "runs" / stamp
    output_dir = Path(output_dir).resolve()
    try:
        cfg = compose_config(output_dir, *overrides)
    except HydraException as e:
        raise ConfigError(error_line(e)) from None
    cfg.print_config = False
    with process_state_kept():
        metrics, data, module = run_training(cfg)
    return Run(metrics=metrics, config=cfg, dir=output_dir, module=module, data=data)
