"""Sharpness against 2/lr for every job of a learning-rate sweep run with the Sharpness callback.

python train.py -m optim.lr=0.02,0.05,0.1,0.2 callbacks=dynamics trainer.max_steps=3000
python -m gradlab eos logs/train/multiruns/<timestamp>
"""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradlab.errors import ConfigError
from gradlab.safe_files import save_figure


def collect(sweep_dir: Path) -> list[tuple[str, list, list, float]]:
    runs = []
    for job in sorted(
        (p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    ):
        events = sorted((job / "tensorboard").rglob("events.out.tfevents.*"))
        if not events:
            continue
        acc = EventAccumulator(str(events[0].parent))  # a sweep job's run is named by overrides
        acc.Reload()
        if "curvature/top_eig" not in acc.Tags()["scalars"]:
            continue
        eig = acc.Scalars("curvature/top_eig")
        limit = acc.Scalars("curvature/2_over_lr")[-1].value
        overrides = (job / ".hydra" / "overrides.yaml").read_text().split("\n")
        label = " ".join(o.lstrip("- ") for o in overrides if "lr" in o) or job.name
        runs.append((label, [e.step for e in eig], [e.value for e in eig], limit))
    return runs


def report(sweep: Path) -> None:
    """Draw ``edge_of_stability.png`` in the sweep directory and print each job's numbers."""
    from gradlab.analysis.plots import plt

    runs = collect(sweep)
    if not runs:
        raise ConfigError(f"{sweep}: no job logged curvature/top_eig (run with callbacks=dynamics)")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, steps, values, limit) in enumerate(runs):
        color = f"C{i}"
        ax.plot(steps, values, color=color, label=f"{label}: sharpness")
        ax.axhline(limit, color=color, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set(
        xlabel="step", ylabel="top Hessian eigenvalue", title="sharpness (solid) vs 2/lr (dashed)"
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = sweep / "edge_of_stability.png"
    save_figure(fig, out, dpi=90)
    for label, steps, values, limit in runs:
        crossed = next((s for s, v in zip(steps, values, strict=True) if v > limit), None)
        peak = max(range(len(values)), key=values.__getitem__)
        print(
            f"{label}: max sharpness {values[peak]:.4g} at step {steps[peak]}, "
            f"last {values[-1]:.4g}, 2/lr {limit:.4g}, "
            + (f"reaches 2/lr at step {crossed}" if crossed is not None else "stays below 2/lr")
        )
    print(f"figure: {out}")
