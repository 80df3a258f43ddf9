"""Where gradients come from: autograd, the model's hand-derived backward, or both, compared.

``GradientSource.fill(model, x, y, update)`` leaves dL/dtheta in every parameter's ``.grad``
and returns the loss of each restart; data-parallel runs all-reduce the hand gradients as
the loss reduces its terms. The LightningModule applies them with its optimizer.
"""

import inspect

import torch
from torch import nn

from gradlab.models.losses import Loss
from gradlab.module.grad_compare import GradDiff, compare_gradients

MODES = ("autograd", "manual", "check")


class GradientSource:
    def __init__(
        self,
        mode: str,
        loss_fn: Loss,
        model: nn.Module,
        check_every_n_steps: int = 100,
        check_tol: float = 1e-4,
    ):
        if mode not in MODES:
            raise ValueError(f"grads.mode: unknown mode {mode!r}; choose one of {list(MODES)}")
        if mode != "autograd" and not callable(getattr(model, "manual_backward", None)):
            raise ValueError(
                f"grads={mode}: model {type(model).__name__} has no hand-written backward "
                "(manual_backward); use grads=autograd"
            )
        self.mode, self.loss_fn = mode, loss_fn
        # autograd's backward: the LightningModule's manual_backward once a Trainer runs it
        self.backward = torch.Tensor.backward
        self.check_every = max(int(check_every_n_steps), 1)
        self.check_tol = check_tol
        self.world_size = 1  # set by the LightningModule when a trainer runs data-parallel
        self.worst: dict[str, GradDiff] = {}  # worst difference per parameter over checked steps
        self.last_check: list[GradDiff] = []
        # training never needs dL/dx: skip it where the model offers that (input_grad=False);
        # a model written against the plain contract manual_backward(dL/dy) works unchanged
        self.backward_kwargs = (
            {"input_grad": False}
            if mode != "autograd"
            and "input_grad" in inspect.signature(model.manual_backward).parameters
            else {}
        )

    def fill(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, update: int):
        """Fill ``.grad`` of every parameter of ``model``; return the loss of each restart."""
        if self.mode == "check" and update % self.check_every == 0:
            rows, losses = compare_gradients(model, self.loss_fn, x, y)  # leaves manual grads
            self._remember(rows)
            return self._sync(model, losses)
        if self.mode != "autograd":
            with torch.no_grad():
                pred = model(x)
                losses = self.loss_fn(pred, y)
                model.manual_backward(self.loss_fn.grad(pred, y), **self.backward_kwargs)
            return self._sync(model, losses)
        for p in model.parameters():
            p.grad = None
        losses = self.loss_fn(model(x), y)
        # DDP averages gradients over processes: right for mean-type losses; a sum-type
        # loss is scaled by the world size first so the average becomes the sum
        world = self.world_size
        scale = world if world > 1 and self.loss_fn.reduction == "sum" else 1
        self.backward(losses.sum() * scale if scale != 1 else losses.sum())
        return self._reduce(losses)

    def _remember(self, rows: list[GradDiff]) -> None:
        self.last_check = rows
        for r in rows:
            old = self.worst.get(r.name)
            if old is None or r.max_rel > old.max_rel:
                self.worst[r.name] = r

    def failures(self) -> list[str]:
        return [r.name for r in self.worst.values() if r.max_rel > self.check_tol]

    def _sync(self, model: nn.Module, losses: torch.Tensor) -> torch.Tensor:
        """All-reduce hand-computed gradients across processes as the loss reduces its terms."""
        if self.world_size == 1:
            return losses
        import torch.distributed as dist

        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                if self.loss_fn.reduction == "mean":
                    p.grad /= self.world_size
        return self._reduce(losses)

    def _reduce(self, losses: torch.Tensor) -> torch.Tensor:
        """The loss of the whole data set from each process's shard (mean or sum of shards)."""
        if self.world_size == 1:
            return losses
        import torch.distributed as dist

        total = losses.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size if self.loss_fn.reduction == "mean" else total


def clip_per_restart(params: list[torch.Tensor], max_norm: float, restarts: int) -> None:
    """Scale each restart's gradient to norm <= max_norm (restarts stay independent)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if restarts > 1:  # leading restart dimension: one norm per restart
        norms = torch.stack([g.reshape(restarts, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    else:
        norms = torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt().reshape(1)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.reshape(-1, *[1] * (g.dim() - 1)) if restarts > 1 else scale[0])
