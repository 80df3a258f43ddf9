"""Figures drawn with matplotlib's non-interactive backend (imported only when plotting)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_loss(history: torch.Tensor, path: Path | None = None, title: str = "Training loss"):
    """Loss per update (each restart faint, the best bold); log scale when it spans decades."""
    fig, ax = plt.subplots(figsize=(6, 4))
    h = history.double()
    if h.shape[1] > 1:
        for r in range(h.shape[1]):
            ax.plot(h[:, r], color="tab:gray", alpha=0.3, lw=0.8)
    best = h.nan_to_num(nan=float("inf")).min(dim=1).values
    ax.plot(best, color="tab:blue", lw=1.5, label="best restart" if h.shape[1] > 1 else "loss")
    finite = best[torch.isfinite(best)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step (optimizer update)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if h.shape[1] > 1:
        ax.legend()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.91)
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
