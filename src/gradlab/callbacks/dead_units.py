"""Report dead ReLU units: zero output on the whole training batch (notebook 003's dying net)."""

import lightning as L
import torch

from gradlab.models.activations import DYING


def dead_units(model, x: torch.Tensor) -> list[tuple[str, torch.Tensor, int]]:
    """(layer name, dead units of each run, units) for every ReLU-family layer of an MLP,
    incl. the output: a unit is dead when its output is <= 0 on every sample of ``x``. With
    a leading run dimension (restarts, a batched group) the counts are one per run; none for a
    model without activations (a polynomial)."""
    if not hasattr(model, "activation") or not hasattr(model, "cache"):
        return []
    acts = [model.activation.name] * (model.num_layers - 1) + [model.output_activation.name]
    with torch.no_grad():
        model(x)
        outputs = model.cache.hs[1:]
    out = []
    for i, (h, name) in enumerate(zip(outputs, acts, strict=True)):
        if name not in DYING:
            continue
        dead = (h <= 0).all(dim=-2).sum(dim=-1) if name == "relu" else h.new_zeros(h.shape[:-2])
        kind = "output" if i == model.num_layers - 1 else "hidden"
        out.append((f"layer {i} ({kind})", dead.long(), h.shape[-1]))
    return out


def report_dead_units(report: list[tuple[str, int, int]], loggers, step: int) -> int:
    """Warn naming each layer with dead units; log ``dead_units`` (their total) at ``step``."""
    for layer, dead, units in report:
        if dead:
            print(
                f"warning: dead ReLU units: {layer} has {dead} of {units} units "
                "with zero output on every training sample"
            )
    total = sum(d for _, d, _ in report)
    for logger in loggers:
        logger.log_metrics({"dead_units": float(total)}, step=step)
    return total


def of_run(report: list[tuple[str, torch.Tensor, int]], run: int | None):
    """One run's (layer, dead, units) of a ``dead_units`` report (``run``: None without a
    run dimension)."""
    return [(layer, int(d if run is None else d[run]), n) for layer, d, n in report]


class DeadUnitCheck(L.Callback):
    """At the end of training, log ``dead_units`` and warn naming each layer with dead units
    (of the best restart)."""

    def on_train_end(self, trainer, pl_module) -> None:
        x, _ = trainer.datamodule.train_batch()
        report = dead_units(pl_module.model, x.to(pl_module.device))
        if not report:
            return
        run = pl_module.best_restart if report[0][1].dim() else None
        pl_module.dead_units = report_dead_units(
            of_run(report, run), trainer.loggers, trainer.global_step
        )
