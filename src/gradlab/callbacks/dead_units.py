"""Report dead ReLU units: zero output on the whole training batch (notebook 003's dying net)."""

import lightning as L
import torch

from gradlab.callbacks.publish import log_scalars
from gradlab.models.activations import DYING


def dead_fraction(model, x: torch.Tensor, best: int = 0) -> list[tuple[str, int, int]]:
    """(layer name, dead units, units) for every ReLU-family layer of an MLP, incl. the output."""
    acts = [model.activation.name] * (model.num_layers - 1) + [model.output_activation.name]
    with torch.no_grad():
        model(x)
        outputs = model.cache.hs[1:]
    out = []
    for i, (h, name) in enumerate(zip(outputs, acts, strict=True)):
        if name not in DYING:
            continue
        if h.dim() == 3:  # restarts: report the best restart's units
            h = h[best]
        dead = int((h <= 0).all(dim=0).sum()) if name == "relu" else 0
        out.append(
            (
                f"layer {i} ({'output' if i == model.num_layers - 1 else 'hidden'})",
                dead,
                h.shape[-1],
            )
        )
    return out


class DeadUnitCheck(L.Callback):
    """At the end of training, log ``dead_units`` and warn naming each layer with dead units."""

    def on_train_end(self, trainer, pl_module) -> None:
        model = pl_module.model
        if not hasattr(model, "activation") or not hasattr(model, "cache"):
            return
        x, _ = trainer.datamodule.train_batch()
        x = x.to(pl_module.device)
        report = dead_fraction(model, x, pl_module.best_restart)
        if not report:
            return
        total = sum(d for _, d, _ in report)
        pl_module.dead_units = total
        for layer, dead, units in report:
            if dead:
                msg = (
                    f"dead ReLU units: {layer} has {dead} of {units} units "
                    "with zero output on every training sample"
                )
                print(f"warning: {msg}")
        log_scalars(trainer, {"dead_units": float(total)}, trainer.global_step)
