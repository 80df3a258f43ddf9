"""A sweep's figures: summary.png (each metric against each swept value, mean and spread
over seeds) and curves.png (every job's loss curve)."""

from pathlib import Path

from gradlab.analysis.plots import plt
from gradlab.safe_files import save_figure
from gradlab.sweep.axes import MAX_TICKS, as_number, axis_of

SWEEP_METRICS = ("train/loss", "val/loss_best", "test/mse", "test/acc")


def plot_sweep(table: list[dict], groups: list[dict], keys: list[str], path: Path):
    """Each final metric against each swept key (``gradlab.sweep.axes``: numbers on a
    numeric axis, lists and strings as categories in sweep order), the mean over seeds with
    its min-max spread, one line per value of the other swept keys; diverged and failed jobs
    are marked at the top, not dropped. No swept key but the seed: one point per group."""
    metrics = [m for m in SWEEP_METRICS if any(g.get(f"{m}/mean") is not None for g in groups)]
    axes_of = {k: axis_of(k, [r.get(k) for r in table]) for k in keys}
    x_keys = keys or [None]
    fig, axes = plt.subplots(
        max(len(metrics), 1),
        len(x_keys),
        figsize=(5 * len(x_keys), 3.2 * max(len(metrics), 1)),
        squeeze=False,
    )
    for col, key in enumerate(x_keys):
        axis = axes_of.get(key) or axis_of("job", [str(i) for i in range(len(groups))])
        others = [k for k in keys if k != key]
        lines: dict[tuple, list[dict]] = {}
        for g in groups:
            lines.setdefault(tuple(g.get(k) for k in others), []).append(g)
        for row, m in enumerate(metrics):
            ax = axes[row][col]
            for label, gs in lines.items():
                if key is None:
                    xs = list(range(len(gs)))
                else:
                    gs = sorted(gs, key=lambda g: axis.where[str(g.get(key))])
                    xs = [axis.where[str(g.get(key))] for g in gs]
                mean = [g.get(f"{m}/mean") for g in gs]
                ok = [i for i, v in enumerate(mean) if v is not None]
                name = ", ".join(f"{short(k)}={v}" for k, v in zip(others, label, strict=True))
                if ok and axis.categorical:  # mean with a min-max bar
                    low = [mean[i] - gs[i][f"{m}/min"] for i in ok]
                    high = [gs[i][f"{m}/max"] - mean[i] for i in ok]
                    ax.errorbar([xs[i] for i in ok], [mean[i] for i in ok], yerr=[low, high],
                                fmt="o-" if len(lines) > 1 else "o", capsize=4,
                                label=name or m)  # fmt: skip
                elif ok:
                    line = ax.plot(
                        [xs[i] for i in ok], [mean[i] for i in ok], marker="o", label=name or m
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
            if key is None:
                names = [" ".join(f"{short(k)}={g.get(k)}" for k in keys) or f"group {i}"
                         for i, g in enumerate(groups)]  # fmt: skip
                ax.set_xticks(range(len(groups)), names, rotation=30, ha="right", fontsize=7)
            elif axis.categorical:
                xs, names = zip(*axis.ticks, strict=True)
                long = max(len(n) for n in names) > 6
                ax.set_xticks(list(xs), list(names), rotation=30 if long else 0,
                              ha="right" if long else "center")  # fmt: skip
                ax.set_xlim(-0.5, len(axis.where) - 0.5)
                ax.set_xlabel(axis.label)
            else:
                if axis.log:
                    ax.set_xscale("log")
                ax.set_xlabel(axis.label)
            ys = [g.get(f"{m}/mean") for g in groups if g.get(f"{m}/mean")]
            if ys and min(ys) > 0 and max(ys) / min(ys) > 50:
                ax.set_yscale("log")
            ax.set_ylabel(m + " (mean, min-max)")
            ax.grid(alpha=0.3)
            if len(lines) > 1 and row == 0:
                handles, labels = ax.get_legend_handles_labels()
                every = -(-len(handles) // MAX_TICKS)  # a readable legend: some lines
                ax.legend(handles[::every], labels[::every], fontsize=7, loc="upper right")
    fig.suptitle(f"sweep {path.parent.name} (x: diverged or failed jobs)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)


def short(key: str) -> str:
    """A swept key's last part, for legends (``optim.lr`` -> ``lr``)."""
    return key.rsplit(".", 1)[-1]


def plot_sweep_curves(table: list[dict], curves: dict, keys: list[str], path: Path):
    """Every job's training loss against the update, coloured by the first swept key
    (``curves``: job -> its restarts' curves). A job with restarts draws its best restart
    (the lowest final loss) and the others faint, each from its own first update: restarts
    are never joined end to end. The curves of one colour and line style are one collection
    (a thousand jobs draw in about half the time of a line each)."""
    import numpy as np
    from matplotlib.collections import LineCollection

    key = keys[0] if keys else None
    axis = axis_of(key, [r.get(key) for r in table]) if key else None
    values = sorted(axis.where, key=axis.where.get) if axis else ["all"]
    cmap = plt.get_cmap("viridis")  # perceptually uniform; its pale yellow end left out
    colours = {v: cmap(0.85 * i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    seeds = sorted({str(r.get("seed")) for r in table}, key=lambda v: (as_number(v) or 0, v))
    styles = ["-", "--", ":", "-."]  # seeds told apart by line style
    drawn: dict[tuple, list] = {}  # (faint, value, style) -> curves as (update, loss) points
    for r in table:
        runs = [np.asarray(c, dtype=float) for c in curves.get(r["job"]) or []]
        runs = [np.where(np.isfinite(c), c, np.nan) for c in runs]  # gaps where not finite
        runs = [c for c in runs if not np.isnan(c).all()]
        if not runs:
            continue
        best = min(range(len(runs)), key=lambda i: runs[i][~np.isnan(runs[i])][-1])
        v = str(r.get(key)) if key else "all"
        style = styles[seeds.index(str(r.get("seed"))) % len(styles)]
        for i, c in enumerate(runs):  # the other restarts: faint, thin
            points = np.column_stack([np.arange(len(c)), c])
            drawn.setdefault((i != best, v, style), []).append(points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (faint, v, style), lines in sorted(drawn.items(), key=lambda item: not item[0][0]):
        ax.add_collection(LineCollection(lines, colors=[colours[v]], linestyles=style,
                                         linewidths=0.5 if faint else 1,
                                         alpha=0.2 if faint else 0.8))  # fmt: skip
    if drawn:  # (jobs run without history draw none: the axes stay empty)
        ax.autoscale_view()
    shown = {v for _, v, _ in drawn}
    named = values[:: -(-len(values) // MAX_TICKS)]  # a readable legend: some values
    for v in [v for v in named if v in shown] if axis else []:
        ax.plot([], [], color=colours[v], lw=1, alpha=0.8, label=f"{axis.label}={axis.name(v)}")
    if 1 < len(seeds) <= len(styles):  # one legend entry per seed's line style
        for i, seed in enumerate(seeds):
            ax.plot([], [], color="grey", ls=styles[i], label=f"seed={seed}")
    restarts = any(faint for faint, _, _ in drawn)
    xlabel = "update of each restart (best restart; others faint)" if restarts else "update"
    ax.set(xlabel=xlabel, ylabel="training loss", title=f"sweep {path.parent.name}: loss curves")
    ax.set_yscale("log")
    starts = [c[0][0] for c in curves.values() if c and c[0] and np.isfinite(c[0][0])]
    if starts:  # diverging curves leave through the top instead of squashing the rest
        ax.set_ylim(top=10 * max(starts))
    ax.grid(alpha=0.3)
    if key and drawn:  # jobs run without history (callbacks=none) draw no curve
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)


def plot_heatmap(groups: list[dict], keys: list[str], path: Path) -> bool:
    """Two swept keys (but the seed): one cell per pair of values, coloured by the mean over
    seeds of val/loss_best (else train/loss), its value written in the cell; cells without a
    finished job are grey with an x. False when there is nothing to draw."""
    import math

    import numpy as np
    from matplotlib.colors import LogNorm

    metric = next((m for m in ("val/loss_best", "train/loss")
                   if any(g.get(f"{m}/mean") is not None for g in groups)), None)  # fmt: skip
    if metric is None or len(keys) != 2:
        return False
    (kx, ky), axes = keys, [axis_of(k, [g.get(k) for g in groups]) for k in keys]
    cols, rows = (sorted(a.where, key=a.where.get) for a in axes)
    cells = np.full((len(rows), len(cols)), np.nan)
    for g in groups:
        value = g.get(f"{metric}/mean")
        if value is not None:
            cells[rows.index(str(g.get(ky))), cols.index(str(g.get(kx)))] = value
    finite = cells[np.isfinite(cells)]
    log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 50
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(cols), 1.2 + 0.55 * len(rows)))
    ax.set_facecolor("0.85")  # no finished job: grey
    image = ax.imshow(cells, cmap="viridis_r", aspect="auto", norm=LogNorm() if log else None)
    fig.colorbar(image, ax=ax, label=f"{metric} (mean over seeds)")
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = cells[i, j]
            dark = not math.isnan(v) and float(image.norm(v)) > 0.55  # viridis_r's dark end
            text = "x" if math.isnan(v) else f"{v:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark else "k")
    ax.set_xticks(range(len(cols)), [axes[0].name(c) for c in cols], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [axes[1].name(r) for r in rows])
    ax.set(xlabel=axes[0].label, ylabel=axes[1].label, title=f"sweep {path.parent.name}")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return True
