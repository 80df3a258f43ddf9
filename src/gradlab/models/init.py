"""Weight initializations, drawn from an explicit ``torch.Generator`` for reproducibility.

Each scheme returns (W, b) for one layer with W stored as (n_in, n_out), so that a
layer computes ``x @ W + b`` on row vectors.
"""

import math

import torch


def _normal(n_in, n_out, g):
    # notebook 000 draws W as (out, in), then b; keep that order so its numbers reproduce
    return torch.randn(n_out, n_in, generator=g).T.contiguous(), torch.randn(n_out, generator=g)


def _scaled_normal(n_in, n_out, g):
    # notebook 004: randn(in, out) / sqrt(in), randn(out) / sqrt(out)
    w = torch.randn(n_in, n_out, generator=g) / math.sqrt(n_in)
    return w, torch.randn(n_out, generator=g) / math.sqrt(n_out)


def _uniform(n_in, n_out, g):
    # torch.nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    bound = 1 / math.sqrt(n_in)
    w = torch.empty(n_out, n_in).uniform_(-bound, bound, generator=g).T.contiguous()
    return w, torch.empty(n_out).uniform_(-bound, bound, generator=g)


def _xavier(n_in, n_out, g):
    w = torch.randn(n_out, n_in, generator=g).T.contiguous() * math.sqrt(2 / (n_in + n_out))
    return w, torch.zeros(n_out)


def _zeros(n_in, n_out, g):
    return torch.zeros(n_in, n_out), torch.zeros(n_out)


SCHEMES = {
    "normal": _normal,
    "scaled_normal": _scaled_normal,
    "uniform": _uniform,
    "torch": _uniform,
    "xavier": _xavier,
    "zeros": _zeros,
}


def draw_layer(scheme: str, n_in: int, n_out: int, generator: torch.Generator | None):
    if scheme not in SCHEMES:
        raise ValueError(f"init: unknown scheme {scheme!r}; choose one of {sorted(SCHEMES)}")
    return SCHEMES[scheme](n_in, n_out, generator)


def check_restarts(restarts) -> int | None:
    """None (no restart dimension) or an integer >= 1."""
    if restarts is None:
        return None
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts: must be a positive integer, got {restarts!r}")
    return restarts


def set_initial_values(module: torch.nn.Module, values: dict | None) -> None:
    """Overwrite named parameters with given values (e.g. notebook 003's w=3, b=1)."""
    if not values:
        return
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            if name not in params:
                raise ValueError(f"init_values: no parameter {name!r}; have {sorted(params)}")
            p = params[name]
            v = torch.as_tensor(value, dtype=p.dtype)
            if v.numel() != p.numel() and p.dim() > v.dim():
                v = v.expand_as(p)  # one value for every restart
            p.copy_(v.reshape(p.shape))
