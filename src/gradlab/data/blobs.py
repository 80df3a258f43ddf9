"""Gaussian clusters for classification (logistic regression, notebook 004)."""

import torch

from gradlab.data.base import FullBatchDataModule, check_positive


class BlobsDataModule(FullBatchDataModule):
    """n_per_class points around each of n_classes random centers in n_inputs dimensions."""

    task = "classification"

    def __init__(
        self,
        n_inputs: int = 2,
        n_classes: int = 3,
        n_per_class: int = 50,
        spread: float = 1.0,
        center_scale: float = 3.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_positive("n_inputs", n_inputs)
        check_positive("n_classes", n_classes)
        check_positive("n_per_class", n_per_class)
        self.num_classes = n_classes
        centers = torch.randn(n_classes, n_inputs, generator=generator) * center_scale

        self.centers, self.spread, self.n_per_class = centers, spread, n_per_class
        self.train = self.draw(n_per_class, generator)
        self.test = self.draw(n_per_class, generator)

    def draw(self, n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n points of each class around its center."""
        n_classes, n_inputs = self.centers.shape
        labels = torch.arange(n_classes).repeat_interleave(n)
        noise = torch.randn(len(labels), n_inputs, generator=generator)
        return self.centers[labels] + self.spread * noise, labels

    def validation_set(self, generator):
        return self.draw(self.n_per_class, generator)
