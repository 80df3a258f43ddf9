"""A progress bar that counts optimizer updates and nothing else: a live bar in a terminal,
plain lines in a log file."""

import sys
import time

from lightning.pytorch.callbacks import TQDMProgressBar
from tqdm import tqdm


class UpdateProgressBar(TQDMProgressBar):
    """Lightning's bar over training updates; validation and test (one full batch each here)
    run without bars of their own, so the console keeps one bar per run, printed once when
    the last update is done (before Lightning's closing lines). A minimizer's bar (BFGS,
    L-BFGS) counts iterations without a total (``max_steps`` is only a cap there) and says
    which restart it is on, the iteration budget left and, once a restart has converged, the
    time the others will take at that pace.

    Without a terminal (a pipe, a log file, CI) no carriage-return frames are written: one
    plain line every ``plain_every`` of the run (a tenth by default), and the last update."""

    def __init__(self, refresh_rate: int = 1, plain_every: float = 0.1, **kwargs) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.plain_every = plain_every
        self.terminal = sys.stdout.isatty()
        self._next_line, self._start = 0, 0.0
        self.bar: tqdm | None = None  # this run's training bar
        self.unit = "updates"

    def init_sanity_tqdm(self):
        return tqdm(disable=True)

    def init_validation_tqdm(self):
        return tqdm(disable=True)

    def init_test_tqdm(self):
        return tqdm(disable=True)

    def init_train_tqdm(self):
        """The bar starts as what it counts (no ``Training: 0/?`` or ``Epoch 0`` frames);
        without a terminal there is no bar, only the plain lines."""
        minimizer = getattr(self.trainer.lightning_module, "is_minimizer", False)
        self.unit = "iterations" if minimizer else "updates"
        steps = self.trainer.max_steps
        self.bar = tqdm(
            desc=self.unit,
            total=None if minimizer or steps < 0 else steps,
            disable=self.is_disabled or not self.terminal,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )
        self._start, self._next_line = time.perf_counter(), 0
        return self.bar

    def on_train_epoch_start(self, trainer, *args) -> None:
        """Lightning resets the bar to the epoch's batches and names it ``Epoch N``: gradlab's
        one epoch is the run, counted in updates from the step it starts at."""
        bar = self.train_progress_bar
        bar.initial = bar.n = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, total = trainer.global_step, self.train_progress_bar.total
        last = total is not None and n >= total
        if self.is_enabled and not self.terminal:
            self._plain_line(trainer, pl_module, n, total, last)
            return
        if self.train_progress_bar.disable or not (last or n % self.refresh_rate == 0):
            return
        self.train_progress_bar.n = n
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        self.train_progress_bar.refresh()
        if last:  # printed once, with its newline, before Lightning's closing lines
            self.train_progress_bar.close()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass  # the bar was updated at the last update (or closed already)

    def _plain_line(self, trainer, pl_module, n: int, total: int | None, last: bool) -> None:
        """One line per ``plain_every`` of the run (or per ``refresh_rate`` x 10 iterations of
        a minimizer, whose total is not known)."""
        if n < self._next_line and not last:
            return
        every = max(int(total * self.plain_every), 1) if total else self.refresh_rate * 10
        self._next_line = (n // every + 1) * every
        shown = ("restart", "budget", "left")  # a minimizer's restarts and budget
        metrics = "  ".join(
            f"{k} {_number(v)}"
            for k, v in self.get_metrics(trainer, pl_module).items()
            if "/" in k or k in shown
        )
        counted = f"{n}/{total}" if total else str(n)
        elapsed = time.perf_counter() - self._start
        print(f"{self.unit} {counted}  {metrics}  {elapsed:.1f} s".rstrip(), flush=True)

    def print(self, *args, sep: str = " ", **kwargs) -> None:
        """Text above the bar (the ``trace`` callback's lines), or plain lines in a log."""
        if self.bar is not None and not self.bar.disable:
            self.bar.write(sep.join(map(str, args)), **kwargs)
        else:
            print(*args, sep=sep, **kwargs)

    def get_metrics(self, trainer, pl_module) -> dict:
        """The bar's values without ``v_num`` (the run's directory names the run); for a
        minimizer, its restarts and budget (``minimizer_progress``)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        if getattr(pl_module, "is_minimizer", False):
            metrics.update(minimizer_progress(trainer, pl_module, self._start))
        return metrics


def minimizer_progress(trainer, pl_module, start: float) -> dict:
    """``restart`` k/R (the one at work), ``budget`` (iterations at most: the optimizers'
    ``max_iter`` per restart, capped by ``max_steps``) and, once a restart has converged,
    ``left`` (the remaining restarts at the pace of the finished ones)."""
    restarts, done = pl_module.restarts, pl_module.progress.restart
    out = {"restart": f"{min(done + 1, restarts)}/{restarts}"} if restarts > 1 else {}
    per_restart = []
    for opt in pl_module.opts:
        group = opt.optimizer.param_groups[0]
        numel = sum(p.numel() for p in group["params"])
        per_restart.append(group.get("max_iter") or 200 * numel)  # BFGS's default: scipy's
    budget = sum(per_restart) * (restarts if len(per_restart) == 1 else 1)
    if trainer.max_steps > 0:
        budget = min(budget, trainer.max_steps)
    out["budget"] = f"<={budget}"
    if 0 < done < restarts:
        left = (time.perf_counter() - start) / done * (restarts - done)
        out["left"] = f"~{left:.0f} s"
    return out


def _number(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
