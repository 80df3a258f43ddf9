"""Compare hand-derived gradients with autograd, per parameter and for the inputs
(``grads=check`` during training; ``python -m gradlab gradcheck`` without training)."""

from dataclasses import dataclass

import torch
from torch import nn

from gradlab.models.losses import Loss


@dataclass
class GradDiff:
    name: str
    max_abs: float
    max_rel: float  # max |g_auto - g_manual| / max |g_auto|


def _diff(name: str, auto: torch.Tensor | None, manual: torch.Tensor | None) -> GradDiff:
    if auto is None and manual is None:
        return GradDiff(name, 0.0, 0.0)
    if auto is None or manual is None:
        return GradDiff(name, float("inf"), float("inf"))
    err = (auto - manual).abs().max().item()
    scale = auto.abs().max().item()
    return GradDiff(name, err, err / scale if scale > 0 else (0.0 if err == 0 else float("inf")))


def compare_gradients(
    model: nn.Module, loss_fn: Loss, x: torch.Tensor, y: torch.Tensor, inputs: bool = True
) -> tuple[list[GradDiff], torch.Tensor]:
    """Both gradients of sum(loss) at the current weights; leaves the manual ones in ``.grad``."""
    params = dict(model.named_parameters())
    x_in = x.detach().clone().requires_grad_(inputs and x.is_floating_point() and x.numel() > 0)
    with torch.enable_grad():
        losses = loss_fn(model(x_in), y)
        wrt = list(params.values()) + ([x_in] if x_in.requires_grad else [])
        auto = torch.autograd.grad(losses.sum(), wrt, allow_unused=True)
    with torch.no_grad():
        pred = model(x)
        grad_x = model.manual_backward(loss_fn.grad(pred, y))
    if grad_x is not None and grad_x.dim() > x.dim():  # per-restart input gradients: sum them
        grad_x = grad_x.sum(0)
    rows = [_diff(n, a, p.grad) for (n, p), a in zip(params.items(), auto, strict=False)]
    if x_in.requires_grad:
        rows.append(_diff("input", auto[-1], grad_x))
    return rows, losses.detach()


def format_table(rows: list[GradDiff], tol: float | None = None) -> str:
    width = max([len(r.name) for r in rows] + [9])
    lines = [f"{'parameter':<{width}}  {'max abs diff':>12}  {'max rel diff':>12}"]
    for r in rows:
        flag = "  FAIL" if tol is not None and r.max_rel > tol else ""
        lines.append(f"{r.name:<{width}}  {r.max_abs:12.3e}  {r.max_rel:12.3e}{flag}")
    return "\n".join(lines)


def log_check(loggers, rows: list[GradDiff], step: int) -> None:
    """A checked update's differences to the loggers (``gradcheck/<param>/max_abs|max_rel``)."""
    if loggers:
        values = {f"gradcheck/{r.name}/max_abs": r.max_abs for r in rows}
        values.update({f"gradcheck/{r.name}/max_rel": r.max_rel for r in rows})
        for logger in loggers:
            logger.log_metrics(values, step=step)


def report_check(gradients) -> None:
    """At the end of a ``grads=check`` run: the worst differences over the checked updates,
    and a failure naming the parameters past ``grads.tol``."""
    from gradlab.errors import GradCheckError

    rows = list(gradients.worst.values())
    if gradients.mode != "check" or not rows:
        return
    print("\nGradient check (worst over checked steps, manual vs autograd):")
    print(format_table(rows, gradients.check_tol))
    bad = gradients.failures()
    if bad:
        raise GradCheckError(
            f"grads.tol: gradient check failed for {', '.join(bad)}: relative difference > "
            f"grads.tol={gradients.check_tol}"
        )
