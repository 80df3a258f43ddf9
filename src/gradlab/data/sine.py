"""sin(x) on n evenly spaced points in [-pi, pi] (notebook 002)."""

import math

import torch

from .base import FullBatchDataModule, check_positive


class SineDataModule(FullBatchDataModule):
    """Train on linspace(-pi, pi, n_train); test on a denser grid over the same interval."""

    def __init__(
        self,
        n_train: int = 2000,
        n_test: int = 500,
        low: float = -math.pi,
        high: float = math.pi,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_positive("n_train", n_train)
        check_positive("n_test", n_test)
        x = torch.linspace(low, high, n_train).unsqueeze(1)
        self.train = (x, torch.sin(x))
        xt = torch.linspace(low, high, n_test).unsqueeze(1)
        self.val = self.test = (xt, torch.sin(xt))
