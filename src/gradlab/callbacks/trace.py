"""Print what the notebooks print for small problems, update by update: the loss, every
parameter, its gradient (hand and autograd side by side under ``grads=check``), the model's
output and the per-sample losses."""

import lightning as L
import torch
from torch.func import functional_call


def _fmt(t: torch.Tensor) -> str:
    values = t.detach().flatten().tolist()
    return (
        "[" + ", ".join(f"{v:.8g}" for v in values) + "]" if len(values) > 1 else f"{values[0]:.8g}"
    )


def _print(trainer, text: str) -> None:
    """Above the progress bar where there is one (else a plain print)."""
    bar = trainer.progress_bar_callback
    (bar.print if bar is not None else print)(text)


class Trace(L.Callback):
    """For the first ``first`` updates and then every ``every``-th (None: never), print one
    block per update, computed at the parameters the update starts from; every
    ``loss_every``-th update also one line ``iteration N: loss L``, the loss before update N
    counted from 1 (notebook 000's training-loop print). In a batched group each run has its
    own (``callbacks.per_run``), printing into its job's text."""

    def __init__(
        self,
        first: int = 5,
        every: int | None = None,
        loss_every: int | None = None,
        max_values: int = 64,
    ):
        self.first, self.every, self.max_values = first, every, max_values
        self.loss_every = loss_every
        self.rows: list[dict] = []  # what was printed, for tests and notebooks

    def wanted(self, update: int) -> bool:
        return update < self.first or bool(self.every and update % self.every == 0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        update = pl_module.updates
        if not trainer.is_global_zero or not self.wanted(update):
            return
        x, y = batch
        model = pl_module.model
        params = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
        if sum(p.numel() for p in params.values()) > self.max_values:
            return  # a trace is for models small enough to read
        pred = functional_call(model, params, (x,))
        loss_fn = pl_module.loss_fn
        losses = loss_fn(pred, y)  # (restarts: one per restart)
        grads = torch.autograd.grad(losses.sum(), list(params.values()), allow_unused=True)
        row = {"step": update, "loss": losses.detach(), "params": params, "autograd": grads}
        if y.numel() and y.shape[-2:] == pred.shape[-2:] and pred.shape[-2] <= 16:
            row["output"] = pred.detach()
            row["per_sample"] = torch.stack(
                [
                    loss_fn(pred[..., i : i + 1, :], y[..., i : i + 1, :])
                    for i in range(pred.shape[-2])
                ],
                dim=-1,
            ).detach()
        self.pending = row

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = pl_module.updates
        if not self.loss_every or n % self.loss_every or not trainer.is_global_zero:
            return
        loss = pl_module.loss_history.latest().item()  # the loss before update n (from 1)
        _print(trainer, f"iteration {n}: loss {loss!r}")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        row = getattr(self, "pending", None)
        if row is None:
            return
        self.pending = None
        row["used"] = [
            p.grad.detach().clone() if p.grad is not None else None
            for p in pl_module.model.parameters()
        ]
        self.rows.append(row)
        _print(trainer, block(row, pl_module.gradients.mode == "check"))


def block(row: dict, check: bool) -> str:
    """One update's printed block."""
    lines = [f"step {row['step']}: loss {row['loss'].sum().item():.10g}"]
    if "output" in row:
        lines.append(f"  output      {_fmt(row['output'])}")
        lines.append(f"  per-sample  {_fmt(row['per_sample'])}")
    for (name, p), g_auto, g_used in zip(
        row["params"].items(), row["autograd"], row["used"], strict=True
    ):
        text = f"  {name:<10} {_fmt(p)}"
        if g_used is not None:
            text += f"   grad {_fmt(g_used)}"
        if check and g_auto is not None:
            text += f"   autograd {_fmt(g_auto)}"
        lines.append(text)
    return "\n".join(lines)
