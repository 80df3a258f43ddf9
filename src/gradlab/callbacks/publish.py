"""Send a finished figure to both places a user looks: plots/<name>.png and TensorBoard."""

from pathlib import Path

DPI = 90


def publish(trainer, fig, name: str, tag: str, step: int) -> None:
    """Save ``fig`` as <run dir>/plots/<name>.png, add it to TensorBoard as ``tag``, close it.

    The figure is rendered once; the PNG and the TensorBoard image share the pixels.
    """
    import numpy as np

    from ..plots import plt

    out = Path(trainer.default_root_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    plt.imsave(out / f"{name}.png", pixels)
    logger = trainer.logger
    if logger is not None and hasattr(logger.experiment, "add_image"):
        logger.experiment.add_image(tag, pixels[..., :3], global_step=step, dataformats="HWC")
    plt.close(fig)
