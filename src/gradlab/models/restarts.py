"""Moving single restarts in and out of a batched model (leading restart dimension R)."""

import copy
from types import SimpleNamespace

import torch
from torch import nn


def num_restarts(model: nn.Module) -> int:
    return getattr(model, "restarts", None) or 1


def single_restart(model: nn.Module, r: int) -> nn.Module:
    """A copy of restart r as a model with no restart dimension (forward caches left empty:
    they may hold tensors of an autograd graph, which cannot be copied)."""
    empty = {
        id(m.cache): SimpleNamespace(**dict.fromkeys(vars(m.cache)))
        for m in model.modules()
        if isinstance(getattr(m, "cache", None), SimpleNamespace)
    }
    one = copy.deepcopy(model, memo=empty)
    for m in one.modules():
        if getattr(m, "restarts", None):
            m.restarts = None
            if hasattr(m, "round_as_solo_runs"):  # one run: no runs to round apart
                m.round_as_solo_runs(False)
    if num_restarts(model) > 1:
        for p in one.parameters():
            p.data = p.data[r].clone()
    return one


def copy_into_restart(model: nn.Module, r: int, one: nn.Module) -> None:
    """Copy a solo model's parameters into restart r of the batched model."""
    with torch.no_grad():
        for p, q in zip(model.parameters(), one.parameters(), strict=True):
            if p.dim() == q.dim():
                p.copy_(q)
            else:
                p[r].copy_(q)
