"""sin(x) on n evenly spaced points in [-pi, pi] (notebook 002)."""

import math

import torch

from gradlab.data.base import FullBatchDataModule, check_positive


class SineDataModule(FullBatchDataModule):
    """Train on linspace(-pi, pi, n_train); test on a denser grid over the same interval;
    validate on n_val uniform points of the interval (drawn after the weights)."""

    def __init__(
        self,
        n_train: int = 2000,
        n_test: int = 500,
        n_val: int = 500,
        low: float = -math.pi,
        high: float = math.pi,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_positive("n_train", n_train)
        check_positive("n_test", n_test)
        self.n_val, self.low, self.high = check_positive("n_val", n_val), low, high
        x = torch.linspace(low, high, n_train).unsqueeze(1)
        self.train = (x, torch.sin(x))
        xt = torch.linspace(low, high, n_test).unsqueeze(1)
        self.test = (xt, torch.sin(xt))

    def validation_set(self, generator):
        x = torch.rand(self.n_val, 1, generator=generator) * (self.high - self.low) + self.low
        return x, torch.sin(x)
