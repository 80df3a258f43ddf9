"""Send a finished figure to both places a user looks: plots/<name>.png and TensorBoard."""

from pathlib import Path


def publish(trainer, fig, name: str, tag: str, step: int) -> None:
    """Save ``fig`` as <run dir>/plots/<name>.png, add it to TensorBoard as ``tag``, close it."""
    from ..plots import plt

    out = Path(trainer.default_root_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=90)
    logger = trainer.logger
    if logger is not None and hasattr(logger.experiment, "add_figure"):
        logger.experiment.add_figure(tag, fig, global_step=step, close=False)
    plt.close(fig)
