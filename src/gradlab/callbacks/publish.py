"""Send results where a user looks: figures to plots/<name>.png and TensorBoard, scalars to
every configured logger."""

from pathlib import Path

DPI = 90


def publish(trainer, fig, name: str, tag: str, step: int) -> None:
    """Save ``fig`` as <run dir>/plots/<name>.png, add it to TensorBoard as ``tag``, close it."""
    publish_to(Path(trainer.default_root_dir), trainer.loggers, fig, name, tag, step)


def publish_to(run_dir: Path, loggers, fig, name: str, tag: str, step: int) -> None:
    """``publish`` into ``run_dir`` and ``loggers`` (a batched group's job: its own).

    The figure is rendered once; the PNG and the TensorBoard image share the pixels.
    """
    import numpy as np

    from gradlab.analysis.plots import plt
    from gradlab.safe_files import check_directory, open_new

    out = check_directory(run_dir / "plots")
    fig.set_dpi(DPI)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    with open_new(out / f"{name}.png", "wb") as f:
        plt.imsave(f, pixels, format="png")
    for logger in loggers:
        if hasattr(logger.experiment, "add_image"):  # TensorBoard
            logger.experiment.add_image(tag, pixels[..., :3], global_step=step, dataformats="HWC")
    plt.close(fig)


def log_scalars(trainer, values: dict, step: int) -> None:
    """``values`` at ``step`` (an update count) to every logger of the run."""
    for logger in trainer.loggers:
        logger.log_metrics(values, step=step)
