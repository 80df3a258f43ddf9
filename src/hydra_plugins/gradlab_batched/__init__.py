"""Hydra finds plugins only in the ``hydra_plugins`` package: these shims name gradlab's
batched launcher (``hydra/launcher=batched``) and grid sweeper (``hydra/sweeper=grid``),
which live in ``gradlab.sweep``."""

from gradlab.sweep import grid_sweeper, launcher


class BatchedLauncher(launcher.BatchedLauncher):
    """``gradlab.sweep.launcher.BatchedLauncher``."""


class GridSweeper(grid_sweeper.GridSweeper):
    """``gradlab.sweep.grid_sweeper.GridSweeper``."""
