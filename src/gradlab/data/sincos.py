"""f(x) = sin(x1) + 2 cos(x2) on [-2, 2]^2 (notebook 000)."""

import torch

from gradlab.data.base import FullBatchDataModule, check_positive


def sincos(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x[:, 0]) + 2 * torch.cos(x[:, 1])).unsqueeze(1)


class SinCosDataModule(FullBatchDataModule):
    """n_train uniform points for training, n_val more for validation (drawn after the
    weights); the grid_size x grid_size grid for test."""

    def __init__(
        self,
        n_train: int = 50,
        n_val: int = 50,
        grid_size: int = 100,
        low: float = -2.0,
        high: float = 2.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_positive("n_train", n_train)
        check_positive("grid_size", grid_size)
        self.n_val = check_positive("n_val", n_val)
        if not low < high:
            raise ValueError(f"low/high: need low < high, got {low} >= {high}")
        self.low, self.high, self.grid_size = low, high, grid_size
        x = torch.rand(n_train, 2, generator=generator) * (high - low) + low
        self.train = (x, sincos(x))
        lin = torch.linspace(low, high, grid_size)
        x1, x2 = torch.meshgrid(lin, lin, indexing="ij")
        grid = torch.stack([x1.flatten(), x2.flatten()], dim=1)
        self.test = (grid, sincos(grid))
        self.grid = (grid_size, grid_size)

    def validation_set(self, generator):
        x = torch.rand(self.n_val, 2, generator=generator) * (self.high - self.low) + self.low
        return x, sincos(x)
