"""gradlab's Hydra launcher that trains a sweep's seeds and learning rates as one vectorized run
(``hydra/launcher=batched``)."""
