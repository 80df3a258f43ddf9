"""Each sweep job's fit, drawn from its ``last.ckpt`` when the sweep's summary is written:
``plots/fit.png`` in the job's directory (unless the job drew its own: ``in_sweeps``) and
``fits.png`` tiling them, one job per group of seeds, at most ``MAX_FITS`` (thinned evenly
beyond that). Training draws nothing for it; the job's data are drawn again from its seed,
as ``eval.py`` draws them."""

import math
from pathlib import Path

from gradlab.errors import CheckpointError, ConfigError
from gradlab.sweep.axes import axis_of

MAX_FITS = 16
DPI = 70


def plot_fits(sweep_dir: Path, table: list[dict], keys: list[str]) -> int:
    """Draw the chosen jobs' fits (``keys``: the swept keys but the seed); how many."""
    import numpy as np

    from gradlab.analysis.plots import plt
    from gradlab.safe_files import check_directory, open_new

    axes = {k: axis_of(k, [r.get(k) for r in table]) for k in keys}
    images = []
    for row in chosen(table, keys):
        title = ", ".join(f"{axes[k].label}={axes[k].name(row.get(k))}" for k in keys)
        fig = job_fit(sweep_dir / row["job"], title or f"job {row['job']}")
        if fig is None:
            continue
        fig.set_dpi(DPI)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        own = check_directory(sweep_dir / row["job"] / "plots") / "fit.png"
        if not own.exists():  # (a job that drew its figures keeps its own: in_sweeps)
            with open_new(own, "wb") as f:
                plt.imsave(f, pixels, format="png")
        images.append(pixels)
    if images:
        with open_new(sweep_dir / "fits.png", "wb") as f:
            plt.imsave(f, tile(images), format="png")
    return len(images)


def chosen(table: list[dict], keys: list[str]) -> list[dict]:
    """The first finished job of each group of seeds, at most MAX_FITS (evenly thinned)."""
    first: dict[tuple, dict] = {}
    for row in table:
        if row.get("status") in ("ok", "diverged", "interrupted"):
            first.setdefault(tuple(str(row.get(k)) for k in keys), row)
    rows = list(first.values())
    every = max(1, math.ceil(len(rows) / MAX_FITS))
    return rows[::every][:MAX_FITS]


def job_fit(job: Path, title: str):
    """The fit figure of a job's ``last.ckpt`` (its best restart), or None: no checkpoint, or
    no fit to draw for its data (not 1-D or 2-D regression or 2-D classification)."""
    from gradlab.callbacks.figures import fit_figures
    from gradlab.models.restarts import single_restart
    from gradlab.pipeline.checkpoint_io import load_checkpoint
    from gradlab.pipeline.evaluate import stored_config
    from gradlab.pipeline.process_state import torch_settings
    from gradlab.pipeline.run import draw

    path = job / "checkpoints" / "last.ckpt"
    if not path.is_file():
        return None
    try:
        ckpt = load_checkpoint(path)
        cfg = stored_config(ckpt, path)
        with torch_settings(cfg):
            data, model = draw(cfg, trusted=False)
            weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()
                       if k.startswith("model.")}  # fmt: skip
            model.load_state_dict(weights)
            losses = ckpt["gradlab"].get("last_losses")
            if losses is not None and len(losses) > 1:  # its best restart, as its run reports
                model = single_restart(model, int(losses.nan_to_num(nan=math.inf).argmin()))
            step = int(ckpt["gradlab"].get("updates", 0))
            title = f"{title} (step {step})"
            figures = fit_figures(model.eval(), data, step, title=title, compact=True)
    except (CheckpointError, ConfigError, RuntimeError, KeyError):
        return None  # a checkpoint this sweep cannot draw: its other files still tell
    fit = figures.pop("fit", None) or figures.pop("decision_regions", None)
    from gradlab.analysis.plots import plt

    for other in figures.values():
        plt.close(other)
    return fit


def tile(images: list):
    """Images side by side in rows (as square as they go), on white."""
    import numpy as np

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    out = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    for n, image in enumerate(images):
        r, c = divmod(n, cols)
        out[r * h : r * h + image.shape[0], c * w : c * w + image.shape[1]] = image
    return out
