"""Figures of a parameter trajectory: each parameter against the update (small models), or
the path in the plane of its top two principal directions and each layer's distance from the
start (large ones)."""

from pathlib import Path

import torch

from gradlab.analysis.plots import plt
from gradlab.safe_files import save_figure


def plot_params(trajectory: torch.Tensor, names: list[str], path: Path | None = None):
    """Each scalar parameter (a, b, c, d, ...) after every update."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for j, name in enumerate(names):
        ax.plot(trajectory[:, j], label=name)
    ax.set(xlabel="step (optimizer update)", ylabel="value", title="parameter trajectories")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path, dpi=90)
        plt.close(fig)
    return fig


def plot_param_path(params: torch.Tensor, steps: torch.Tensor, sizes, path: Path):
    """The optimizer's path in the plane of the top two principal directions of the visited
    points (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"), and each
    parameter tensor's distance from its start, for a model of any size."""
    x = params.float()
    centred = x - x.mean(0)
    # principal directions from the (snapshots x snapshots) Gram matrix: no copy of the
    # (snapshots x parameters) matrix beyond the centred one
    eigenvalues, vectors = torch.linalg.eigh((centred @ centred.T).double())
    top, vectors = eigenvalues.flip(0).clamp_min(0), vectors.flip(1)
    coords = vectors[:, :2] * top[:2].sqrt()
    if coords.shape[1] < 2:
        coords = torch.cat([coords, torch.zeros_like(coords)], 1)
    explained = (top[:2] / top.sum().clamp_min(1e-300)).tolist() + [0.0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    sc = a.scatter(coords[:, 0], coords[:, 1], c=steps.float(), cmap="viridis", s=12)
    a.plot(coords[:, 0], coords[:, 1], lw=0.6, color="grey")
    a.plot(coords[0, 0], coords[0, 1], "k*", ms=10, label="start")
    a.set(
        xlabel=f"PC1 ({100 * explained[0]:.1f}% of the path's variance)",
        ylabel=f"PC2 ({100 * explained[1]:.1f}%)",
        title="parameters along the run",
    )
    a.legend(fontsize=8)
    fig.colorbar(sc, ax=a, label="update")
    k = 0
    for name, n in sizes:
        chunk = x[:, k : k + n]
        b.plot(steps, (chunk - chunk[0]).norm(dim=1), label=name)
        k += n
    b.set(xlabel="update", ylabel="||theta - theta_0||", title="distance from the start")
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return fig
