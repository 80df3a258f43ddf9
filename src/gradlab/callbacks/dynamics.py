"""Training-dynamics instruments: gradient/weight/activation statistics, sharpness, baselines."""

import math

import lightning as L
import torch

from gradlab.callbacks.publish import log_scalars as _log
from gradlab.callbacks.publish import publish
from gradlab.models.activations import DYING


class GradientStatistics(L.Callback):
    """Every k updates, per parameter: gradient norm, weight norm, log10 update/weight ratio;
    per MLP layer: activation mean and std, saturated fraction (tanh/sigmoid), dead fraction (ReLU).

    Values are gathered as tensors on the device and converted (one sync) only every k updates.
    """

    def __init__(self, every_n_steps: int = 10):
        self.every = max(int(every_n_steps), 1)
        self._before = None
        self.records: list[tuple[int, dict[str, float]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # once per update, before the optimizer applies it: sample every every_n_steps-th
        step = pl_module.updates
        if step % self.every:
            return
        stats = {}
        for name, p in pl_module.model.named_parameters():
            if p.grad is not None:
                stats[f"dynamics/grad_norm/{name}"] = p.grad.norm()
            stats[f"dynamics/weight_norm/{name}"] = p.detach().norm()
        stats.update(self._activations(pl_module.model))
        self._before = (
            step,
            {n: p.detach().clone() for n, p in pl_module.model.named_parameters()},
            stats,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._flush(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._flush(trainer, pl_module)

    def _flush(self, trainer, pl_module) -> None:
        if self._before is None:
            return
        step, before, stats = self._before
        self._before = None
        for name, p in pl_module.model.named_parameters():
            ratio = (p.detach() - before[name]).norm() / before[name].norm().clamp_min(1e-30)
            stats[f"dynamics/update_ratio_log10/{name}"] = torch.log10(ratio.clamp_min(1e-30))
        values = {k: float(v) for k, v in stats.items()}  # the one device sync per k updates
        self.records.append((step, values))
        _log(trainer, values, step)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not self.records or not trainer.is_global_zero:
            return
        from gradlab.analysis.dynamics_plots import plot_dynamics

        publish(
            trainer, plot_dynamics(self.records), "dynamics", "dynamics/figure", pl_module.updates
        )

    @staticmethod
    def _activations(model) -> dict:
        cache = getattr(model, "cache", None)
        if cache is None or getattr(cache, "hs", None) is None or not hasattr(model, "activation"):
            return {}
        out = {}
        name = model.activation.name
        for i, h in enumerate(cache.hs[1:-1]):
            h = h.detach()
            out[f"dynamics/act_mean/layer{i}"] = h.mean()
            out[f"dynamics/act_std/layer{i}"] = h.std() if h.numel() > 1 else h.new_zeros(())
            if name == "tanh":
                out[f"dynamics/saturated/layer{i}"] = (h.abs() > 0.97).float().mean()
            elif name == "sigmoid":
                out[f"dynamics/saturated/layer{i}"] = ((h < 0.02) | (h > 0.98)).float().mean()
            elif name in DYING:
                out[f"dynamics/dead/layer{i}"] = (h <= 0).all(dim=-2).float().mean()
        return out


class Sharpness(L.Callback):
    """Top Hessian eigenvalue of the training loss every k updates, next to 2/lr (the stability
    limit of gradient descent); says so when a run crosses it (edge of stability)."""

    def __init__(self, every_n_steps: int = 50, iterations: int = 20):
        self.every = max(int(every_n_steps), 1)
        self.iterations = iterations
        self.history: list[tuple[int, float, float]] = []
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.updates - self._last >= self.every or self._last < 0:
            self._measure(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._measure(trainer, pl_module)
        if self.history:
            crossed = [s for s, eig, limit in self.history if eig > limit]
            top = max(e for _, e, _ in self.history)
            line = f"sharpness: max {top:.4g} vs 2/lr {self.history[-1][2]:.4g}"
            line += (
                f"; crossed 2/lr first at step {crossed[0]}" if crossed else "; never crossed 2/lr"
            )
            pl_module.add_summary(
                line,
                **{
                    "curvature/top_eig": self.history[-1][1],
                    "curvature/crossed_2_over_lr": float(bool(crossed)),
                },
            )

    def _measure(self, trainer, pl_module) -> None:
        from gradlab.analysis.curvature import top_hessian_eigenvalue

        step = pl_module.updates
        if step == self._last:
            return
        self._last = step
        x, y = (t.to(pl_module.device) for t in trainer.datamodule.train_batch())
        params = [p for p in pl_module.model.parameters()]
        g = torch.Generator().manual_seed(0)
        eig = top_hessian_eigenvalue(
            lambda: pl_module.loss_fn(pl_module.model(x), y).sum(), params, self.iterations, g
        )
        lr = pl_module.lr
        limit = 2.0 / lr if lr > 0 else math.inf  # (a schedule may end at rate 0: no limit)
        self.history.append((step, eig, limit))
        _log(trainer, {"curvature/top_eig": eig, "curvature/2_over_lr": limit}, step)


class LeastSquaresBaseline(L.Callback):
    """For models linear in their parameters: the least-squares optimum's loss (``baseline/loss``),
    the gap ``train/loss - baseline/loss`` every k updates, the design matrix's condition number.
    """

    def __init__(self, every_n_steps: int = 10):
        self.every = max(int(every_n_steps), 1)
        self.baseline = None

    def on_train_start(self, trainer, pl_module) -> None:
        from gradlab.analysis.baselines import least_squares

        x, y = trainer.datamodule.train
        solved = least_squares(pl_module.model, x.cpu(), y.cpu())
        if solved is None:
            name = type(pl_module.model).__name__
            pl_module.add_summary(
                f"least-squares baseline: not applicable ({name} is not linear in its parameters)"
            )
            return
        theta, phi, cond = solved
        pred = phi @ theta
        self.baseline = float(pl_module.loss_fn(pred, y.cpu().double()))
        self.coefficients = theta.flatten().tolist()
        pl_module.add_summary(
            f"least-squares optimum: loss {self.baseline:.7g}, coefficients "
            f"{[round(c, 6) for c in self.coefficients]}, condition number {cond:.4g}",
            **{"baseline/loss": self.baseline, "baseline/condition_number": cond},
        )
        _log(trainer, {"baseline/loss": self.baseline, "baseline/condition_number": cond}, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.baseline is None:
            return
        hist = pl_module.loss_history.latest()
        if hist is not None and (pl_module.updates - 1) % self.every == 0:
            _log(trainer, {"baseline/gap": float(hist) - self.baseline}, pl_module.updates - 1)

    def on_train_end(self, trainer, pl_module) -> None:
        hist = pl_module.loss_history.latest()
        if self.baseline is not None and hist is not None and not math.isnan(float(hist)):
            pl_module.add_summary("", **{"baseline/gap": float(hist) - self.baseline})

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.baseline is None or not trainer.is_global_zero or not pl_module.updates:
            return
        from gradlab.analysis.plots import plot_loss

        fig = plot_loss(pl_module.history(), title="training loss vs the least-squares optimum")
        ax = fig.axes[0]
        ax.axhline(self.baseline, color="tab:red", ls="--", label=f"optimum {self.baseline:.6g}")
        ax.legend()
        publish(trainer, fig, "baseline", "baseline/figure", pl_module.updates)
