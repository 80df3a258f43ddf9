"""The LightningModule and what it holds per update: gradient sources, the loss history."""

from gradlab.module.gradlab_module import GradLabModule

__all__ = ["GradLabModule"]
