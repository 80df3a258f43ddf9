"""The loss of every restart at every update (and, optionally, every parameter), kept on the
training device in buffers that double when full: one row write per update, no host sync."""

import math

import torch


class LossHistory:
    def __init__(self, restarts: int, capacity: int = 1024, track_params: bool = False):
        self.restarts = restarts
        self.track_params = track_params
        self.length = 0
        self.losses = torch.full((max(int(capacity), 1), restarts), math.nan)
        self.params: torch.Tensor | None = None  # (capacity, n) with track_params
        self.initial_params: torch.Tensor | None = None

    def to(self, device: torch.device) -> None:
        self.losses = self.losses.to(device)
        if self.params is not None:
            self.params = self.params.to(device)

    def start(self, model: torch.nn.Module) -> None:
        """Remember the initial point (for trajectories) before the first update."""
        if not self.track_params:
            return
        flat = self._flat(model)
        if self.initial_params is None:
            self.initial_params = flat.clone()
        if self.params is None:
            self.params = torch.full((len(self.losses), flat.numel()), math.nan, device=flat.device)

    @staticmethod
    def _flat(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def _grow(self) -> None:
        self.losses = torch.cat([self.losses, torch.full_like(self.losses, math.nan)])
        if self.params is not None:
            self.params = torch.cat([self.params, torch.full_like(self.params, math.nan)])

    def append(self, losses: torch.Tensor, params_at: torch.nn.Module | None = None) -> int:
        """Store one update's per-restart losses (and the parameters they were computed at)."""
        i = self.length
        if i >= len(self.losses):
            self._grow()
        self.losses[i] = losses.detach()
        if self.params is not None and params_at is not None:
            self.params[i] = self._flat(params_at)
        self.length = i + 1
        return i

    def best(self, i: int) -> torch.Tensor:
        """The lowest loss over restarts at row i (NaN rows of unstarted restarts ignored)."""
        row = self.losses[i]
        return (
            row.nan_to_num(nan=math.inf, posinf=math.inf).min()
            if self.restarts > 1
            else row.reshape(())
        )

    def rows(self, first: int = 0, last: int | None = None) -> torch.Tensor:
        return self.losses[first : self.length if last is None else last]

    def table(self) -> torch.Tensor:
        """Shape (updates, restarts), on the CPU."""
        return self.losses[: self.length].cpu()

    def trajectory(self, with_start: bool = False) -> torch.Tensor | None:
        if self.params is None:
            return None
        path = self.params[: self.length].cpu()
        if with_start and self.initial_params is not None:
            path = torch.cat([self.initial_params.cpu().unsqueeze(0), path])
        return path

    def state_dict(self) -> dict:
        return {
            "length": self.length,
            "losses": self.table(),
            "params": self.trajectory(),
            "initial_params": None if self.initial_params is None else self.initial_params.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        n = int(state.get("length", 0))
        device = self.losses.device
        self.losses = torch.full((max(n, len(self.losses)), self.restarts), math.nan, device=device)
        if n:
            self.losses[:n] = state["losses"].to(device)
        self.length = n
        if state.get("initial_params") is not None:
            self.initial_params = state["initial_params"].to(device)
        params = state.get("params")
        if params is not None:
            self.params = torch.full((len(self.losses), params.shape[1]), math.nan, device=device)
            self.params[:n] = params.to(device)
