"""Figures of a run, drawn with matplotlib (imported only when plotting): Agg outside Jupyter,
the inline backend in a kernel, so returned figures show in the notebook."""

import sys
from pathlib import Path

import matplotlib


def _backend() -> None:
    """In a Jupyter kernel the inline backend, whatever MPLBACKEND the shell set (figures
    show in the notebook: IPython's own ``%matplotlib inline``); elsewhere Agg (files only)."""
    shell = None
    if "ipykernel" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    else:
        matplotlib.use("Agg")


_backend()
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gradlab.safe_files import save_figure  # noqa: E402


def plot_loss(
    history: torch.Tensor,
    path: Path | None = None,
    title: str = "Training loss",
    validation: list[tuple[int, float]] = (),
):
    """Loss per update (each restart faint, the best bold) and the validation loss after
    ``validation``'s update counts; log scale when it spans decades."""
    fig, ax = plt.subplots(figsize=(6, 4))
    h = history.double()
    sequential = h.shape[1] > 1 and bool((~torch.isnan(h)).sum(1).le(1).all())
    if sequential:  # a minimizer's restarts, one after another: one coloured segment each
        for r in range(h.shape[1]):
            ax.plot(h[:, r], lw=1.2)
        best = h.nan_to_num(nan=float("inf"), posinf=float("inf")).min(dim=1).values
    else:
        if h.shape[1] > 1:
            for r in range(h.shape[1]):
                ax.plot(h[:, r], color="tab:gray", alpha=0.3, lw=0.8)
        best = h.nan_to_num(nan=float("inf"), posinf=float("inf")).min(dim=1).values
        label = "training (best restart)" if h.shape[1] > 1 else "training"
        ax.plot(best, color="tab:blue", lw=1.5, label=label)
    if validation:
        steps, values = zip(*validation, strict=True)
        ax.plot(steps, values, "o-", color="tab:orange", ms=3, lw=1, label="validation")
        best = torch.cat([best, torch.tensor(values, dtype=best.dtype)])
    finite = best[torch.isfinite(best)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step (optimizer update or minimizer iteration)")
    ax.set_ylabel("loss")
    ax.set_title(title + (" (restarts one after another)" if sequential else ""))
    ax.grid(alpha=0.3)
    if (h.shape[1] > 1 and not sequential) or validation:
        ax.legend()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.91)
    if path is not None:
        save_figure(fig, path, dpi=100)
        plt.close(fig)
    return fig


def _grid_axes(x: torch.Tensor, shape: tuple[int, int]):
    return x[:, 0].reshape(shape).numpy(), x[:, 1].reshape(shape).numpy()


def _plane_image(ax, x_grid, z, shape, **kwargs):
    """z over the input plane as a smooth image (far cheaper to draw than filled contours)."""
    g1, g2 = _grid_axes(x_grid, shape)
    z = z.reshape(shape).numpy()
    rows_are_x2 = g1[0, 0] != g1[0, -1]  # an "xy" grid; an "ij" grid needs a transpose
    return ax.imshow(
        z if rows_are_x2 else z.T,
        origin="lower",
        extent=(g1.min(), g1.max(), g2.min(), g2.max()),
        aspect="auto",
        interpolation="bilinear",
        **kwargs,
    )


def plot_surface_2d(x_grid, y_true, y_pred, shape, x_train, title_model: str, step: int):
    """True function / prediction / error over the input plane, training points marked, and
    prediction against truth; a 2x2 grid that stays readable in a TensorBoard card."""
    fig, grid = plt.subplots(2, 2, figsize=(9, 7.4))
    axes = grid.flatten()
    panels = [
        ("true function", y_true, "viridis"),
        (f"{title_model} at step {step}", y_pred, "viridis"),
        ("error (prediction - true)", y_pred - y_true, "RdBu_r"),
    ]
    vmin, vmax = float(y_true.min()), float(y_true.max())
    for ax, (title, z, cmap) in zip(axes, panels, strict=False):
        if cmap == "RdBu_r":
            lim = max(float(z.abs().max()), 1e-12)
            vmin, vmax = -lim, lim
        image = _plane_image(ax, x_grid, z, shape, cmap=cmap, vmin=vmin, vmax=vmax)
        fig.colorbar(image, ax=ax)
        ax.scatter(x_train[:, 0], x_train[:, 1], s=10, c="k", marker="x", label="train points")
        ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    axes[0].legend(loc="upper right", fontsize=8)
    truth, pred = y_true.flatten(), y_pred.flatten()
    axes[3].scatter(truth, pred, s=2, alpha=0.4)
    lo, hi = float(truth.min()), float(truth.max())
    axes[3].plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = true")
    axes[3].set(title="prediction against true (test grid)", xlabel="true", ylabel="prediction")
    axes[3].legend(fontsize=8)
    # fixed margins: tight_layout measured every label (0.45 s a figure; a sweep draws many)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.94, wspace=0.3, hspace=0.3)
    return fig


def plot_prediction_2d(x_grid, y_pred, shape, x_train, title: str, vrange):
    """The prediction over the input plane with the training points: one panel (a sweep's
    fits.png tiles one per job; ``vrange``: the true function's range, shared by all)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    image = _plane_image(ax, x_grid, y_pred, shape, cmap="viridis", vmin=vrange[0], vmax=vrange[1])
    fig.colorbar(image, ax=ax)
    ax.scatter(x_train[:, 0], x_train[:, 1], s=8, c="k", marker="x")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.9)
    return fig


def plot_hidden_maps(x_grid, hidden: list[torch.Tensor], shape, step: int):
    """One small map per hidden unit: its output over the input plane (one row per layer)."""
    rows = len(hidden)
    cols = max(h.shape[-1] for h in hidden)
    height = 2.1 * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, height), squeeze=False)
    for r, h in enumerate(hidden):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= h.shape[-1]:
                ax.axis("off")
                continue
            _plane_image(ax, x_grid, h[:, c], shape, cmap="RdBu_r")
            ax.set_title(f"layer {r + 1}, unit {c}", fontsize=8)
    fig.suptitle(f"hidden units over the input plane (step {step})")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.75 / height, hspace=0.35)
    return fig


def plot_fit_1d(
    x_train,
    y_train,
    x_test,
    y_test,
    x_dense,
    y_dense,
    title: str,
    hidden=None,
    out_weight=None,
    scale: bool = False,
):
    """Train/test points and the fitted curve; optionally each hidden unit on a second axis."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(x_train, y_train, s=12, c="tab:blue", label="train")
    if x_test is not None:
        ax.scatter(x_test, y_test, s=12, c="tab:orange", marker="^", label="test")
    ax.plot(x_dense, y_dense, c="k", lw=2, label="fit")
    if hidden is not None:
        ax2 = ax.twinx()
        units = hidden * out_weight if scale else hidden
        for j in range(units.shape[-1]):
            ax2.plot(x_dense, units[:, j], lw=0.8, alpha=0.7)
        ax2.set_ylabel("hidden unit output" + (" x output weight" if scale else ""))
    # keep the data readable when an overfit curve swings far outside it (notebook 004 2c)
    ys = y_train if y_test is None else torch.cat([y_train.flatten(), y_test.flatten()])
    lo, hi = float(ys.min()), float(ys.max())
    margin = 0.5 * (hi - lo) + 1e-12
    if float(y_dense.min()) < lo - margin or float(y_dense.max()) > hi + margin:
        ax.set_ylim(lo - margin, hi + margin)
        title += " (curve clipped)"
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.subplots_adjust(left=0.1, right=0.88, bottom=0.12, top=0.9)
    return fig


def plot_decision_regions(x_train, y_train, predict, title: str):
    """Predicted class over the plane with the labelled points (2-D classification)."""
    lo, hi = x_train.min(0).values - 1, x_train.max(0).values + 1
    g1, g2 = torch.meshgrid(
        torch.linspace(lo[0], hi[0], 200), torch.linspace(lo[1], hi[1], 200), indexing="ij"
    )
    labels = predict(torch.stack([g1.flatten(), g2.flatten()], 1)).reshape(g1.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(
        g1.numpy(),
        g2.numpy(),
        labels.numpy(),
        alpha=0.3,
        cmap="tab10",
        levels=torch.arange(-0.5, int(labels.max()) + 1.5).numpy(),
        vmin=0,
        vmax=9,
    )
    ax.scatter(
        x_train[:, 0],
        x_train[:, 1],
        c=y_train.numpy(),
        cmap="tab10",
        vmin=0,
        vmax=9,
        s=14,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
    return fig


def plot_gradcheck(rows, tol: float):
    """Bar chart of the per-parameter relative difference, with the table as text."""
    fig, (ax, ax_text) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    names = [r.name for r in rows]
    rel = [max(r.max_rel, 1e-18) for r in rows]
    ax.bar(names, rel, color=["tab:red" if v > tol else "tab:green" for v in rel])
    ax.axhline(tol, color="k", ls="--", lw=1, label=f"tol {tol:g}")
    ax.set_yscale("log")
    ax.set(ylabel="max rel. difference", title="gradient check: manual vs autograd")
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    from gradlab.module.grad_compare import format_table

    ax_text.axis("off")
    ax_text.text(0, 1, format_table(rows, tol), family="monospace", fontsize=8, va="top")
    fig.subplots_adjust(left=0.1, right=0.99, bottom=0.3, top=0.9)
    return fig


def plot_landscape(alphas, line, surface):
    """Loss along one and two filter-normalized random directions through the final weights."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.plot(alphas, line, c="tab:blue")
    a1.axvline(0, c="k", lw=0.8, ls="--")
    a1.set(xlabel="step along direction 1", ylabel="training loss", title="1-D slice")
    if line.min() > 0 and line.max() / line.min() > 100:
        a1.set_yscale("log")
    z = torch.log10(surface.clamp_min(1e-12)).numpy()
    cs = a2.contourf(alphas, alphas, z.T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=a2, label="log10 training loss")
    a2.plot([0], [0], "r*", ms=12, label="final weights")
    a2.set(xlabel="direction 1", ylabel="direction 2", title="2-D slice (filter-normalized)")
    a2.legend(loc="upper right", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.13, top=0.9, wspace=0.25)
    return fig


def plot_exact_surface_1d(xs, values, path, path_losses, name):
    """The loss of a one-parameter problem, with the parameter's path marked on it."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(xs, values, c="tab:blue", label="loss")
    if path is not None:
        ax.plot(path[:, 0], path_losses, "o-", c="tab:red", ms=3, lw=1, label="optimizer path")
    ax.set(xlabel=name, ylabel="loss", title="exact loss with the optimizer's path")
    ax.legend()
    return fig


def plot_exact_surface_2d(xs, ys, grid, path, names):
    fig, ax = plt.subplots(figsize=(6.5, 5))
    cs = ax.contourf(xs, ys, grid.T.numpy(), levels=40, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="training loss")
    if path is not None:
        ax.plot(path[:, 0], path[:, 1], "o-", c="tab:red", ms=3, lw=1, label="optimizer path")
        ax.legend(loc="upper right", fontsize=8)
    ax.set(xlabel=names[0], ylabel=names[1], title="exact loss surface with the optimizer's path")
    return fig
