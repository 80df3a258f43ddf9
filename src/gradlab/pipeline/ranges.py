"""The accepted range of every numeric option, checked before any training: a value out of
range ends in one line naming the key and the range, instead of a ZeroDivisionError halfway
through the run, a run that ignores it, or one that fails at the end."""

import math
import os

from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError

# key -> (integer?, the lowest value, whether the lowest is allowed); null always allowed
RANGES = {
    "module.grad_clip": (False, 0, False),
    "module.stop_tol": (False, 0, True),
    "module.trajectory_budget_mb": (False, 0, False),
    "grads.every_n_steps": (True, 1, True),
    "grads.tol": (False, 0, False),
    "scheduler.step_size": (True, 1, True),
    "scheduler.gamma": (False, 0, False),
    "scheduler.T_max": (True, 1, True),
    "scheduler.eta_min": (False, 0, True),
    "data.noise": (False, 0, True),
    "trainer.val_check_interval": (False, 0, False),
    "optim.gtol": (False, 0, True),
    "optim.tolerance_grad": (False, 0, True),
    "optim.tolerance_change": (False, 0, True),
    "optim.max_iter": (True, 1, True),
    "optim.max_eval": (True, 1, True),
    "optim.history_size": (True, 1, True),
    "optim.max_ls": (True, 1, True),
}
# the same for every callback that has these keys
CALLBACK_RANGES = {
    "every_n_steps": (True, 1, True),
    "plot_every_n_steps": (True, 1, True),
    "iterations": (True, 1, True),
    "points": (True, 2, True),
    "span": (False, 0, False),
}
MIXED_PRECISION = ("16", "bf16", "16-mixed", "bf16-mixed")
# Lightning's "-true" precisions: gradlab chooses the dtype of data and model together
TRUE_PRECISION = {
    "64": "use dtype=float64 (data and model in float64)",
    "64-true": "use dtype=float64 (data and model in float64)",
    "16-true": "use 16-mixed (autocast) or dtype=float32",
    "bf16-true": "use bf16-mixed (autocast) or dtype=float32",
}


def check_ranges(cfg: DictConfig, only: str = "") -> None:
    """Every key's range; ``only``: only the keys starting with it (``optim.``)."""
    for key, rule in RANGES.items():
        if key.startswith(only):
            _in_range(key, OmegaConf.select(cfg, key), *rule)
    if only:
        return
    for name, node in (cfg.get("callbacks") or {}).items():
        if isinstance(node, DictConfig):
            for key, rule in CALLBACK_RANGES.items():
                _in_range(f"callbacks.{name}.{key}", node.get(key), *rule)
    low, high = OmegaConf.select(cfg, "data.low"), OmegaConf.select(cfg, "data.high")
    if low is not None and high is not None and not low < high:
        raise ConfigError(f"data.low: must be below data.high, got low={low}, high={high}")
    precision = str(OmegaConf.select(cfg, "trainer.precision", default=None))
    if precision in TRUE_PRECISION:  # the model converted, the data left as they were
        raise ConfigError(
            f"trainer.precision: {precision} converts the model but not the data; "
            + TRUE_PRECISION[precision]
        )
    if cfg.grads.mode != "autograd" and precision in MIXED_PRECISION:
        raise ConfigError(
            f"trainer.precision: {precision} with grads={cfg.grads.mode}: hand-derived gradients "
            "run in the model's own dtype; use dtype=float32 or float64 (or grads=autograd)"
        )
    check_trainer_options(cfg)
    check_memory(cfg)


# Trainer options that count something else than updates or act on automatic optimization:
# gradlab's step is one update of manual optimization, so Lightning would ignore them or end
# a run at step 0; refused with the way to say it in updates. (key -> (allowed, what to do))
UNHONOURED_TRAINER_OPTIONS = {
    "max_epochs": ((-1, None), "one epoch is the whole run here; set trainer.max_steps"),
    "min_epochs": ((None,), "set trainer.max_steps (a run trains exactly max_steps updates)"),
    "min_steps": ((None,), "set trainer.max_steps (a run trains exactly max_steps updates)"),
    "limit_train_batches": ((None, 1.0), "set trainer.max_steps (one batch is one update)"),
    "accumulate_grad_batches": ((None, 1), "the full batch is one update; nothing to accumulate"),
    "gradient_clip_val": ((None,), "use module.grad_clip (each restart's gradient norm)"),
    "gradient_clip_algorithm": ((None,), "use module.grad_clip (each restart's gradient norm)"),
}


def check_trainer_options(cfg: DictConfig) -> None:
    """Trainer options gradlab does not honour are refused, never ignored."""
    trainer = cfg.get("trainer") or {}
    for key, (allowed, fix) in UNHONOURED_TRAINER_OPTIONS.items():
        if key in trainer and trainer[key] not in allowed:
            raise ConfigError(
                f"trainer.{key}: {trainer[key]!r} is not honoured (one step is one optimizer "
                f"update of manual optimization); {fix}"
            )


def _in_range(key: str, value, integer: bool, low: float, inclusive: bool) -> None:
    if value is None:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and math.isfinite(value) and (value >= low if inclusive else value > low)
    if integer and not isinstance(value, int):
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f">= {low}" if inclusive else f"> {low}"
        raise ConfigError(f"{key}: must be {kind} {bound}, got {value!r}")


def check_memory(cfg: DictConfig) -> None:
    """An MLP whose parameters, gradients, optimizer state and activations for all restarts
    cannot fit in this machine's memory is refused before anything is allocated."""
    sizes = OmegaConf.select(cfg, "model.sizes")
    if not sizes or not all(isinstance(s, int) and s > 0 for s in sizes):
        return  # the model checks its own sizes
    restarts = cfg.get("restarts") or 1
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    n_train = OmegaConf.select(cfg, "data.n_train", default=1)
    samples = n_train if isinstance(n_train, int) and n_train > 1 else 1  # else: data checks it
    values = restarts * (4 * params + 2 * samples * sum(sizes))  # + grads, 2 states; acts
    need = values * (8 if cfg.dtype == "float64" else 4)
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have:
        raise ConfigError(
            f"model.sizes x restarts: {params:,} parameters x {restarts} restart(s) need about "
            f"{need / 2**30:.1f} GiB (weights, gradients, optimizer state, activations); this "
            f"machine has {have / 2**30:.1f} GiB"
        )
