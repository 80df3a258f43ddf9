"""Run gradlab from Python or Jupyter: ``gradlab.run("experiment=sincos")`` composes the config
as ``train.py`` does and trains it through the same pipeline (same checks, same files on
disk), then returns the trained run. The process is left as it was found: torch flags,
environment, RNGs, Hydra's globals, logging and warning filters.

    import gradlab
    r = gradlab.run("model.sizes=[2,8,1]", "optim.lr=0.2", "trainer.max_steps=500")
    r.metrics["test/mse"], r.history.shape, r.model
    r.figures()["fit"]        # a matplotlib figure: Jupyter shows it inline
"""

import contextlib
import io
import logging
import os
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from gradlab.errors import ConfigError, error_line

if TYPE_CHECKING:  # torch loads when a run starts (see run: what its import changes is undone)
    import torch


@dataclass
class Run:
    """A finished run: its numbers, its history, its trained model and where its files are."""

    metrics: dict
    config: DictConfig
    dir: Path
    module: "object"  # the trained GradLabModule
    data: "object"  # its data module

    @property
    def history(self) -> "torch.Tensor":
        """The training loss of every update, shape (updates, restarts)."""
        return self.module.history()

    @property
    def model(self) -> "torch.nn.Module":
        """The trained model (with restarts: the best restart as a single model)."""
        return self.model_of(self.module.best_restart)

    def model_of(self, restart: int) -> "torch.nn.Module":
        from gradlab.models.restarts import single_restart

        model = self.module.model
        return single_restart(model, restart) if self.module.restarts > 1 else model

    def figures(self) -> dict:
        """The run's figures as matplotlib figures (loss curve, fit, hidden units, ...)."""
        from gradlab.analysis.plots import plot_loss, plt
        from gradlab.callbacks.figures import model_figures

        figures = {"loss": plot_loss(self.history, validation=self.module.val_history)}
        figures.update(model_figures(self.module, self.data))
        for fig in figures.values():  # closed: Jupyter shows one when a cell returns it
            plt.close(fig)
        return figures

    def __repr__(self) -> str:
        shown = {k: round(v, 6) for k, v in self.metrics.items() if isinstance(v, float)}
        return f"Run(dir={str(self.dir)!r}, status={self.metrics.get('status')!r}, {shown})"


def run(*overrides: str, output_dir: str | Path | None = None, quiet: bool = False) -> Run:
    """Train one run as ``python train.py OVERRIDES...`` would and return it. Bad input raises
    ``gradlab.errors.ConfigError`` with the same one-line message the command prints.
    ``quiet=True`` prints only what the run was asked to print (the ``trace`` callback's
    lines): no Lightning lines, warnings or summary; errors are raised, not printed."""
    # before torch and Lightning are imported: their first import sets environment variables
    # and draws from Python's random module, and the process is to be left as it was found
    before = dict(os.environ), random.getstate()
    from hydra.errors import HydraException

    from gradlab.pipeline.compose import compose_config
    from gradlab.pipeline.process_state import kept_process_state
    from gradlab.pipeline.run import train

    named = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra.run.dir=")]
    if named and output_dir is not None and Path(named[-1]).resolve() != Path(output_dir).resolve():
        raise ConfigError(
            f"output_dir: {output_dir} and hydra.run.dir={named[-1]} name two directories for "
            "one run; give one of them"
        )
    if named:
        output_dir = named[-1]
    sink = io.StringIO()
    with kept_process_state(*before), _silenced(quiet, sink):
        try:  # output_dir None: logs/<task_name>/runs/<time>, as train.py names a run
            cfg = compose_config(output_dir and Path(output_dir).resolve(), *overrides)
        except HydraException as e:
            raise ConfigError(error_line(e)) from None
        output_dir = Path(cfg.paths.output_dir)
        cfg.print_config = False
        cfg.print_summary = not quiet
        metrics, parts = train(cfg)
    return Run(metrics=metrics, config=cfg, dir=output_dir, module=parts.module, data=parts.data)


@contextlib.contextmanager
def _silenced(quiet: bool, sink):
    """Standard error (warnings) and library logging into ``sink`` when ``quiet``; standard
    output stays: it carries what the run's own callbacks were asked to print."""
    if not quiet:
        yield
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # restored afterwards
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.redirect_stderr(sink):
        yield


def notebook_dir(name: str) -> Path:
    """A fresh directory for one notebook's runs, ``<project>/logs/notebooks/NAME/<time>``
    (``gradlab.pipeline.compose.project_logs``): ``tensorboard --logdir logs/notebooks``
    shows them."""
    from gradlab.pipeline.compose import project_logs

    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return project_logs() / "notebooks" / name / stamp
