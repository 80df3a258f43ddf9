"""A sweep's figures: summary.png (each metric against each swept value, mean and spread
over seeds) and curves.png (every job's loss curve)."""

from pathlib import Path

from gradlab.analysis.plots import plt
from gradlab.safe_files import save_figure

MAX_TICKS = 12  # category labels on an axis; more are thinned out
SWEEP_METRICS = ("train/loss", "val/loss_best", "test/mse", "test/acc")


def _as_number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def plot_sweep(table: list[dict], groups: list[dict], keys: list[str], path: Path):
    """Each final metric against each swept numeric key (log axis when the values span more
    than a decade): the mean over seeds with a min-max band; diverged and failed jobs are
    marked at the top, not dropped. No numeric key: one point per group, by label."""
    metrics = [m for m in SWEEP_METRICS if any(g.get(f"{m}/mean") is not None for g in groups)]
    numeric = [k for k in keys if all(_as_number(g.get(k)) is not None for g in groups)]
    x_keys = numeric or [None]
    fig, axes = plt.subplots(
        max(len(metrics), 1),
        len(x_keys),
        figsize=(5 * len(x_keys), 3.2 * max(len(metrics), 1)),
        squeeze=False,
    )
    for col, key in enumerate(x_keys):
        others = [k for k in keys if k != key]
        # fewer than three values: categories side by side, no line or band between them
        distinct = sorted({_as_number(g.get(key)) for g in groups}) if key else []
        categorical = key is not None and len(distinct) < 3
        lines: dict[tuple, list[dict]] = {}
        for g in groups:
            lines.setdefault(tuple(g.get(k) for k in others), []).append(g)
        for row, m in enumerate(metrics):
            ax = axes[row][col]
            for label, gs in lines.items():
                if key is None:
                    gs = sorted(gs, key=lambda g: str(g))
                    xs = list(range(len(gs)))
                    ax.set_xticks(
                        xs,
                        [" ".join(f"{k}={g.get(k)}" for k in keys) for g in gs],
                        rotation=30,
                        ha="right",
                        fontsize=7,
                    )
                else:
                    gs = sorted(gs, key=lambda g: _as_number(g.get(key)))
                    xs = [_as_number(g.get(key)) for g in gs]
                    if categorical:
                        xs = [distinct.index(x) for x in xs]
                mean = [g.get(f"{m}/mean") for g in gs]
                ok = [i for i, v in enumerate(mean) if v is not None]
                name = ", ".join(f"{k}={v}" for k, v in zip(others, label, strict=True)) or m
                if ok and categorical:  # mean with a min-max bar
                    low = [mean[i] - gs[i][f"{m}/min"] for i in ok]
                    high = [gs[i][f"{m}/max"] - mean[i] for i in ok]
                    ax.errorbar([xs[i] for i in ok], [mean[i] for i in ok], yerr=[low, high],
                                fmt="o", capsize=4, label=name)  # fmt: skip
                elif ok:
                    line = ax.plot(
                        [xs[i] for i in ok], [mean[i] for i in ok], marker="o", label=name
                    )[0]
                    ax.fill_between(
                        [xs[i] for i in ok],
                        [gs[i][f"{m}/min"] for i in ok],
                        [gs[i][f"{m}/max"] for i in ok],
                        alpha=0.2,
                        color=line.get_color(),
                    )
                bad = [i for i, g in enumerate(gs) if g["n_ok"] < g["n"]]
                for i in bad:  # diverged or failed jobs: a red x at the top of the axes
                    ax.plot(
                        xs[i],
                        1.0,
                        "x",
                        color="red",
                        transform=ax.get_xaxis_transform(),
                        clip_on=False,
                    )
            if categorical:
                every = -(-len(distinct) // MAX_TICKS)  # at most MAX_TICKS labels: readable
                shown = range(0, len(distinct), every)
                ax.set_xticks(list(shown), [f"{distinct[i]:g}" for i in shown])
                ax.set_xlim(-0.5, len(distinct) - 0.5)
                ax.set_xlabel(key)
            elif key is not None:
                values = [v for g in groups if (v := _as_number(g.get(key))) is not None]
                if values and min(values) > 0 and max(values) / min(values) > 10:
                    ax.set_xscale("log")
                ax.set_xlabel(key)
            ys = [g.get(f"{m}/mean") for g in groups if g.get(f"{m}/mean")]
            if ys and min(ys) > 0 and max(ys) / min(ys) > 50:
                ax.set_yscale("log")
            ax.set_ylabel(m + " (mean, min-max)")
            ax.grid(alpha=0.3)
            if len(lines) > 1 and row == 0:
                ax.legend(fontsize=7, loc="upper right")  # loc="best" is slow for many points
    fig.suptitle(f"sweep {path.parent.name} (x: diverged or failed jobs)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)


def plot_sweep_curves(table: list[dict], curves: dict, keys: list[str], path: Path):
    """Every job's training loss against the update, coloured by the first swept key."""
    key = keys[0] if keys else None
    values = (
        sorted(
            {str(r.get(key)) for r in table},
            key=lambda v: (_as_number(v) is None, _as_number(v) or 0, v),
        )
        if key
        else ["all"]
    )
    cmap = plt.get_cmap("viridis")  # perceptually uniform; its pale yellow end left out
    colours = {v: cmap(0.85 * i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    seeds = sorted({str(r.get("seed")) for r in table}, key=lambda v: (_as_number(v) or 0, v))
    styles = ["-", "--", ":", "-."]  # seeds told apart by line style
    fig, ax = plt.subplots(figsize=(7, 4.5))
    named = set(values[:: -(-len(values) // MAX_TICKS)])  # a readable legend: some values
    labelled = set()
    for r in table:
        losses = curves.get(r["job"]) or []
        finite = [v if v == v and abs(v) != float("inf") else None for v in losses]
        if not any(v is not None for v in finite):
            continue
        v = str(r.get(key)) if key else "all"
        ax.plot(
            range(len(finite)),
            finite,
            color=colours[v],
            ls=styles[seeds.index(str(r.get("seed"))) % len(styles)],
            lw=1,
            alpha=0.8,
            label=f"{key}={v}" if key and v in named and v not in labelled else None,
        )
        labelled.add(v)
    if 1 < len(seeds) <= len(styles):  # one legend entry per seed's line style
        for i, seed in enumerate(seeds):
            ax.plot([], [], color="grey", ls=styles[i], label=f"seed={seed}")
        labelled.add("seeds")
    ax.set(xlabel="update", ylabel="training loss", title=f"sweep {path.parent.name}: loss curves")
    ax.set_yscale("log")
    starts = [c[0] for c in curves.values() if c and c[0] == c[0] and c[0] < float("inf")]
    if starts:  # diverging curves leave through the top instead of squashing the rest
        ax.set_ylim(top=10 * max(starts))
    ax.grid(alpha=0.3)
    if key and labelled:  # jobs run without history (callbacks=none) draw no curve
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)
