"""Process-wide state a run changes, kept: ``gradlab.run`` in a Python session or notebook
leaves torch's flags, the environment, every RNG, Hydra's globals, logging and warning
filters as it found them."""

import logging
import os
import random
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass
class ProcessState:
    torch_flags: tuple
    environ: dict
    rngs: tuple
    hydra_config: object
    loggers: dict
    warning_filters: list


def _torch_flags() -> tuple:
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_default_dtype(),
        torch.get_num_threads(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )


def _loggers() -> dict:
    every = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    return {
        log.name: (log.level, log.propagate, list(log.filters), list(log.handlers), log.disabled)
        for log in every
    }


def capture() -> ProcessState:
    import numpy as np
    from hydra.core.hydra_config import HydraConfig

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return ProcessState(
        torch_flags=_torch_flags(),
        environ=dict(os.environ),
        rngs=(random.getstate(), np.random.get_state(), torch.random.get_rng_state(), cuda),
        hydra_config=HydraConfig.instance().cfg,
        loggers=_loggers(),
        warning_filters=list(warnings.filters),
    )


def restore(state: ProcessState) -> None:
    import numpy as np
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    det, warn_only, dtype, threads, cudnn_det, cudnn_bench = state.torch_flags
    torch.use_deterministic_algorithms(det, warn_only=warn_only)
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench
    for key in set(os.environ) - set(state.environ):
        del os.environ[key]
    os.environ.update(state.environ)
    random.setstate(state.rngs[0])
    np.random.set_state(state.rngs[1])
    torch.random.set_rng_state(state.rngs[2])
    if state.rngs[3] is not None:
        torch.cuda.set_rng_state_all(state.rngs[3])
    HydraConfig.instance().cfg = state.hydra_config
    if state.hydra_config is None and GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    for name, (level, propagate, filters, handlers, disabled) in state.loggers.items():
        log = logging.getLogger(name) if name != "root" else logging.getLogger()
        log.setLevel(level)
        log.propagate, log.filters, log.handlers, log.disabled = (
            propagate,
            filters,
            handlers,
            disabled,
        )
    warnings.filters[:] = state.warning_filters


@contextmanager
def kept_process_state(environ: dict | None = None, python_random: tuple | None = None):
    """Run the block, then put the process-wide state back as it was before it (the
    environment and Python's random state as given, when captured before imports)."""
    state = capture()
    if environ is not None:
        state.environ = environ
    if python_random is not None:
        state.rngs = (python_random, *state.rngs[1:])
    try:
        yield
    finally:
        restore(state)


def run_dtype(cfg) -> torch.dtype:
    """The run's dtype (``dtype``: float32 unless set)."""
    return getattr(torch, cfg.get("dtype") or "float32")


@contextmanager
def torch_settings(cfg):
    """The run's default dtype and intra-op threads (process-wide torch settings), restored
    when the block ends, so a float64 run leaves the Python session as it found it."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(run_dtype(cfg))
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
