"""The figure of ``callbacks=dynamics``: the training instruments (sharpness, gradient norm,
update size, ...) against the update."""

from gradlab.analysis.plots import plt


def plot_dynamics(records: list[tuple[int, dict[str, float]]]):
    """Gradient norms, log10 update/weight ratios (1e-3 reference) and unit health over steps."""
    steps = [s for s, _ in records]
    keys = sorted({k for _, v in records for k in v})
    panels = [
        ("dynamics/grad_norm/", "gradient norm", True),
        ("dynamics/update_ratio_log10/", "log10 |update| / |weight|", False),
        ("dynamics/", "fraction of units", False),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(7, 9), sharex=True)  # readable in a card
    for ax, (prefix, label, log) in zip(axes, panels, strict=True):
        if prefix == "dynamics/":
            chosen = [k for k in keys if k.startswith(("dynamics/saturated/", "dynamics/dead/"))]
        else:
            chosen = [k for k in keys if k.startswith(prefix)]
        for k in chosen:
            ax.plot(steps, [v.get(k, float("nan")) for _, v in records], label=k.split("/", 1)[1])
        if prefix.startswith("dynamics/update"):
            ax.axhline(-3, color="k", ls="--", lw=1, label="1e-3 reference")
        if log:
            ax.set_yscale("log")
        ax.set(ylabel=label)
        ax.grid(alpha=0.3)
        if chosen:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no tanh/sigmoid/ReLU layers", ha="center", transform=ax.transAxes)
    axes[0].set_title("gradient norms")
    axes[1].set_title("update-to-weight ratio")
    axes[2].set_title("saturated (tanh/sigmoid) or dead (ReLU) units")
    axes[2].set_xlabel("step")
    fig.tight_layout()
    return fig
