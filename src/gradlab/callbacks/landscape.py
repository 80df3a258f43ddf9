"""Loss-landscape slices through the final weights (filter-normalized directions, Li et al. 2018),
and the exact loss surface with the optimizer's path for one- and two-parameter problems."""

import lightning as L
import torch

from gradlab.callbacks.publish import publish


def filter_normalized_direction(params: list[torch.Tensor], generator: torch.Generator):
    """A random direction scaled, per filter (row of each weight matrix), to the weights' norm."""
    out = []
    for p in params:
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        if p.dim() <= 1:
            d = d * p.detach().norm() / d.norm().clamp_min(1e-12)
        else:  # one "filter" per output unit: a column of W stored as (in, out)
            d = (
                d
                * p.detach().norm(dim=-2, keepdim=True)
                / d.norm(dim=-2, keepdim=True).clamp_min(1e-12)
            )
        out.append(d.to(p.device))
    return out


class LossLandscape(L.Callback):
    def __init__(self, points: int = 41, span: float = 1.0, seed: int = 0):
        self.points, self.span, self.seed = points, span, seed

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        from gradlab.analysis import plots

        model, loss_fn = pl_module.model, pl_module.loss_fn
        x, y = (t.to(pl_module.device) for t in trainer.datamodule.train_batch())
        params = list(model.parameters())
        base = [p.detach().clone() for p in params]

        def loss_at(shift):
            with torch.no_grad():
                for p, b, s in zip(params, base, shift, strict=True):
                    p.copy_(b + s)
                return float(loss_fn(model(x), y).sum())

        g = torch.Generator().manual_seed(self.seed)
        d1, d2 = filter_normalized_direction(params, g), filter_normalized_direction(params, g)
        alphas = torch.linspace(-self.span, self.span, self.points)
        line = [loss_at([a * u for u in d1]) for a in alphas]
        surface = torch.tensor(
            [
                [loss_at([a * u + b * v for u, v in zip(d1, d2, strict=True)]) for b in alphas]
                for a in alphas
            ]
        )
        figures = {"landscape": plots.plot_landscape(alphas, torch.tensor(line), surface)}
        loss_at([torch.zeros_like(b) for b in base])  # restore the final weights
        path = pl_module.trajectory(with_start=True)
        if sum(p.numel() for p in params) in (1, 2):
            figures["loss_surface"] = exact_loss_surface(model, loss_fn, x, y, path, self.points)
        for key, fig in figures.items():
            publish(trainer, fig, key, f"landscape/{key}", pl_module.updates)


def exact_loss_surface(model, loss_fn, x, y, path: torch.Tensor | None, points: int = 41):
    """The exact loss of a one- or two-parameter model over a box around its parameters and
    its ``path`` (every update's parameters), with the path drawn on it; the model is left
    as it was."""
    from gradlab.analysis import plots

    params = list(model.parameters())
    names = [name for name, _ in model.named_parameters()]
    base = [p.detach().clone() for p in params]
    flat = torch.cat([b.reshape(-1) for b in base]).cpu()
    pts = torch.cat([flat.unsqueeze(0), path]) if path is not None else flat.unsqueeze(0)
    lo, hi = pts.min(0).values, pts.max(0).values
    pad = (hi - lo).clamp_min(1.0) * 0.3
    axes = [
        torch.linspace(float(lo[i] - pad[i]), float(hi[i] + pad[i]), points)
        for i in range(len(flat))
    ]

    def at(values) -> float:
        with torch.no_grad():
            k = 0
            for p in params:
                m = p.numel()
                p.copy_(
                    torch.tensor(values[k : k + m], dtype=p.dtype).reshape(p.shape).to(p.device)
                )
                k += m
            return float(loss_fn(model(x), y).sum())

    try:
        if len(flat) == 1:
            values = torch.tensor([at([float(a)]) for a in axes[0]])
            path_losses = None if path is None else [at([float(v)]) for v in path[:, 0]]
            return plots.plot_exact_surface_1d(axes[0], values, path, path_losses, names[0])
        grid = torch.tensor([[at([float(a), float(b)]) for b in axes[1]] for a in axes[0]])
        return plots.plot_exact_surface_2d(axes[0], axes[1], grid, path, names)
    finally:
        with torch.no_grad():
            for p, b in zip(params, base, strict=True):
                p.copy_(b)
