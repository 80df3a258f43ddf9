"""Instrument callbacks in a batched group, run by run. Each run gets its own instance of each
configured instrument (``callbacks=dynamics``: gradient statistics, sharpness, least-squares
baseline, loss landscape; the figures; the dead units' check; the trace), called at the hooks
its solo run's trainer calls, with a view of that run alone: its weights, gradients and
training activations copied into a model of its own (so its products round as its solo
run's), its data and batch, rate and losses, its job directory for figures, a recorder for
what it logs and a printer for what it prints, which its job replays in its solo run's order
(``pipeline.group_record``). A run that stopped (``module.stop_tol``) ends its instruments
there; one that diverged gets ``on_exception`` at the update its solo run failed at (its
figures are drawn there) and nothing after."""

import copy
import zlib
from types import SimpleNamespace

import lightning as L
import numpy as np

from gradlab.callbacks.dead_units import DeadUnitCheck
from gradlab.callbacks.dynamics import GradientStatistics, LeastSquaresBaseline, Sharpness
from gradlab.callbacks.figures import FigureLogger
from gradlab.callbacks.landscape import LossLandscape
from gradlab.callbacks.trace import Trace
from gradlab.errors import DivergenceError
from gradlab.models.restarts import single_restart
from gradlab.optim.per_run import PerRunLearningRates, param_group_of_run

# the instruments a group runs per run (their jobs' output: their solo runs'), at these hooks
INSTRUMENTS = (GradientStatistics, Sharpness, LeastSquaresBaseline, LossLandscape, FigureLogger,
               DeadUnitCheck, Trace)  # fmt: skip
HOOKS = ("on_train_start", "on_train_batch_start", "on_before_optimizer_step",
         "on_train_batch_end", "on_exception", "on_train_end", "on_fit_end")  # fmt: skip


class Recorder:
    """A run's logger in a group: its scalars and images in order, by where in the run they
    came (``at``: ("train_start", -1), ("update", index) (in it: nothing is logged there),
    ("batch_end", update index), ("train_end", -1) or ("fit_end", -1)), for its job's
    loggers to replay in its solo run's order."""

    def __init__(self):
        self.events: dict[tuple, list] = {}  # at -> [("scalars" | "image", payload)]
        self.at = ("train_start", -1)
        self.experiment = self  # figures are added through ``logger.experiment.add_image``

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.events.setdefault(self.at, []).append(("scalars", (dict(metrics), step)))

    def add_image(self, tag, img, global_step=None, dataformats="CHW") -> None:
        # its pixels compressed (a plot is mostly blank: ~1/30 of its size) until replayed
        pixels = (zlib.compress(np.ascontiguousarray(img).tobytes(), 1), img.shape, img.dtype)
        image = (tag, pixels, global_step, dataformats)
        self.events.setdefault(self.at, []).append(("image", image))

    def replay(self, loggers, at: tuple[str, int]) -> None:
        """Log what came ``at`` into a job's ``loggers``."""
        for kind, payload in self.events.get(at, ()):
            for logger in loggers:
                if kind == "scalars":
                    logger.log_metrics(payload[0], step=payload[1])
                elif hasattr(logger.experiment, "add_image"):  # TensorBoard, as publish_to
                    tag, (packed, shape, dtype), step, formats = payload
                    img = np.frombuffer(zlib.decompress(packed), dtype=dtype).reshape(shape)
                    logger.experiment.add_image(tag, img, global_step=step, dataformats=formats)


class RunPrinter:
    """A run's console in a group: what its solo run prints (a trace), kept for its job."""

    def __init__(self):
        self.lines: list[str] = []

    def print(self, text: str) -> None:
        self.lines.append(text)


class RunTrainer:
    """What an instrument reads of its trainer, for one run of a group."""

    is_global_zero, fast_dev_run = True, False

    def __init__(self, datamodule, run_dir: str, loggers: list, updates: int, printer):
        self.datamodule, self.default_root_dir, self.loggers = datamodule, run_dir, loggers
        self.global_step, self.progress_bar_callback = updates, printer


class RunModule:
    """What an instrument reads of its LightningModule, for run ``r`` of the group's ``module``:
    its model (a copy of the run's weights, made when first asked for), loss, rate, updates,
    loss history; ``add_summary`` keeps its final values (``summary``)."""

    restarts, group = 1, None  # (restarts > 1 and grads=check: their jobs run alone)

    def __init__(self, module, r: int, template, summary: dict, activations: bool = False):
        self.group_module, self.r, self.template, self.summary = module, r, template, summary
        self.loss_fn, self.device, self.updates = module.loss_fn, module.device, module.updates
        self.gradients = SimpleNamespace(mode=module.gradients.mode, worst={})
        self.loss_history, self._model, self.activations = self, None, activations

    @property
    def model(self):
        if self._model is None:
            model = self.group_module.model
            self._model = run_model(model, self.r, self.template, self.activations)
        return self._model

    @property
    def lr(self) -> float:
        opt = self.group_module.trainer.optimizers[0]
        if isinstance(opt, PerRunLearningRates):  # (its inner rate is 1)
            return float(opt.lrs[self.r])
        return opt.param_groups[param_group_of_run(opt, self.r)[0]]["lr"]

    def history(self):
        """The run's loss at every update so far, shape (updates, 1)."""
        column = self.group_module.history()[:, self.r : self.r + 1]
        return column[: self.updates]

    def latest(self):  # (``loss_history.latest()``: the run's loss at its latest update)
        if not self.updates:
            return None
        return self.group_module.loss_history.rows(self.updates - 1, self.updates)[0, self.r]

    def trajectory(self, with_start: bool = False):
        return None  # (module.track_params: its jobs run alone)

    def add_summary(self, line: str, **metrics: float) -> None:
        self.summary.update(metrics)


def run_model(group_model, r: int, template, activations: bool = False):
    """Run ``r``'s model: a copy of ``template`` (a single run's model) holding its weights
    and gradients and (``activations``: in the update, after its training forward) that
    forward's activations (an MLP's ``cache.hs``), in tensors of its own, as its solo run
    holds them."""
    model = copy.deepcopy(template)
    for p, q in zip(model.parameters(), group_model.parameters(), strict=True):
        p.data.copy_(q.detach()[r])
        p.grad = None if q.grad is None else q.grad[r].clone()
    hs = getattr(getattr(group_model, "cache", None), "hs", None)
    if activations and hs is not None:
        model.cache.hs = [h.detach()[r].clone() for h in hs]
    return model


class PerRunCallbacks(L.Callback):
    """The group's instruments, run by run: ``built``, one run's (built from their configs,
    copied for the others: building is the slow part); ``datas`` (run -> its data module) and
    ``dirs`` (run -> its job directory); ``logged``: the runs have loggers (their recorders
    replay into them). ``summaries``: each run's final values (``add_summary``), for its
    metrics.json."""

    def __init__(self, built: list, datas, dirs: list[str], logged: bool):
        runs = len(dirs)
        self.instruments = [built] + [copy.deepcopy(built) for _ in range(runs - 1)]
        self.recorders = [Recorder() if logged else None for _ in range(runs)]
        self.printers = [RunPrinter() for _ in range(runs)]  # what each one's solo run prints
        self.summaries: list[dict] = [{} for _ in range(runs)]
        self.datas, self.dirs, self.own_data = datas, dirs, {}
        self.ended: set[int] = set()  # runs whose instruments have ended (train end called)
        self.template = None  # a single run's model, copied for each view
        self.hooks = {h for h in HOOKS for i in self.instruments[0]  # (the others: not called)
                      if getattr(type(i), h) is not getattr(L.Callback, h)}  # fmt: skip

    def call(self, hook: str, module, runs, at: tuple[str, int], *args) -> None:
        """``hook`` of each of ``runs``' instruments, with its views (``at``: where its
        solo run is, for what it logs)."""
        if hook not in self.hooks:
            return
        if self.template is None:
            self.template = single_restart(module.model, 0)
        for r in runs:
            recorder = self.recorders[r]
            if recorder is not None:
                recorder.at = at
            if r not in self.own_data:  # (tensors of its own, as its solo run's)
                self.own_data[r] = self.datas(r)
            loggers = [recorder] if recorder else []
            view = RunTrainer(self.own_data[r], self.dirs[r], loggers, module.updates,
                              self.printers[r])  # fmt: skip
            run = RunModule(module, r, self.template, self.summaries[r], at[0] == "update")
            for instrument in self.instruments[r]:
                getattr(instrument, hook)(view, run, *args)

    @staticmethod
    def running(module, n: int, latest: int) -> list[int]:
        """The group's runs whose solo runs make update ``n`` (``latest``: the updates whose
        losses are known)."""
        losses = module.loss_history.rows(latest - 1, latest)[0].tolist() if latest else None
        return module.group.running(n, losses)

    def on_train_start(self, trainer, pl_module) -> None:
        n = pl_module.updates
        runs = self.running(pl_module, n, n)
        self.call("on_train_start", pl_module, runs, ("train_start", -1))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if "on_train_batch_start" not in self.hooks:
            return
        n = pl_module.updates
        for r in self.running(pl_module, n + 1, n):  # each run's own batch
            if r not in self.own_data:
                self.own_data[r] = self.datas(r)
            mine = tuple(t.to(pl_module.device) for t in self.own_data[r].train_batch())
            self.call("on_train_batch_start", pl_module, [r], ("batch_start", n), mine, 0)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if "on_before_optimizer_step" not in self.hooks:  # (figures alone: no host read)
            return
        n = pl_module.updates  # (its loss is not known yet: checked at the batch end)
        runs = self.running(pl_module, n + 1, n)
        self.call("on_before_optimizer_step", pl_module, runs, ("update", n), optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = pl_module.updates
        if self.hooks.isdisjoint({"on_train_batch_end", "on_exception"}):  # (no host read)
            self.end(pl_module, pl_module.group.newly_stopped)
            return
        runs = self.running(pl_module, n, n)  # (a non-finite loss now: its solo run failed)
        failed = [r for r in self.running(pl_module, n, n - 1) if r not in runs]
        latest = pl_module.loss_history.rows(n - 1, n)[0].tolist() if failed else []
        for r in failed:  # its solo run raises in this update: no batch end, its exception
            lr = RunModule(pl_module, r, None, {}).lr
            error = DivergenceError.at(n - 1, latest[r], lr)
            self.call("on_exception", pl_module, [r], ("batch_end", n - 1), error)
        self.ended.update(failed)
        self.call("on_train_batch_end", pl_module, runs, ("batch_end", n - 1), None, None, 0)
        self.end(pl_module, pl_module.group.newly_stopped)  # at their stop, as solo runs

    def on_train_end(self, trainer, pl_module) -> None:
        n = pl_module.updates
        self.end(pl_module, [r for r in self.running(pl_module, n, n) if r not in self.ended])

    def end(self, module, runs: list[int]) -> None:
        """The runs' train end and fit end (a solo run draws its figures at its fit end)."""
        self.ended.update(runs)
        self.call("on_train_end", module, runs, ("train_end", -1))
        self.call("on_fit_end", module, runs, ("fit_end", -1))
