"""The loss of every restart at every update (and, optionally, the parameters), kept on the
training device in buffers that double when full: one row write per update, no host sync.

Parameter snapshots stay within a budget of values (default 16M, 64 MB in float32): a small
model keeps every update; once the buffer would pass the budget, every other snapshot is
dropped and the stride doubles, so a large model keeps a thinned path of any run length."""

import math
from pathlib import Path

import torch


def is_log_step(i: int, every: int, max_steps: int) -> bool:
    """Whether update i's loss is logged: Lightning's cadence (updates n - 1, 2n - 1, ...),
    the first and the last."""
    return (i + 1) % every == 0 or i == 0 or i + 1 == max_steps


def best_of(rows: torch.Tensor) -> torch.Tensor:
    """Each row's lowest loss over its restarts (last dimension; NaN of unstarted restarts
    ignored); of one restart, its loss as it is (NaN stays NaN): what train/loss logs."""
    if rows.shape[-1] == 1:
        return rows[..., 0]
    return rows.nan_to_num(nan=math.inf, posinf=math.inf).min(dim=-1).values


def first_nonfinite(values: torch.Tensor) -> int | None:
    """The index of the first value that is not finite (a diverged update), or None."""
    bad = (~torch.isfinite(values)).nonzero()
    return int(bad[0]) if len(bad) else None


class LossHistory:
    def __init__(
        self,
        restarts: int,
        capacity: int = 1024,
        track_params: bool = False,
        budget_values: int = 16 * 2**20,
    ):
        self.restarts = restarts
        self.track_params = track_params
        self.budget_values = budget_values
        self.length = 0
        self.losses = torch.full((max(int(capacity), 1), restarts), math.nan)
        self.params: torch.Tensor | None = None  # (capacity, n) snapshots with track_params
        self.kept = 0  # snapshots stored
        self.written: set[int] = set()  # updates whose snapshot is in the run's files
        self.stride = 1  # a snapshot every ``stride`` updates
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
            rows = min(len(self.losses), self.max_rows(flat.numel()))
            self.params = torch.full((rows, flat.numel()), math.nan, device=flat.device)

    def max_rows(self, n: int) -> int:
        """Snapshots of ``n`` values that fit the budget (at least 2)."""
        return max(2, self.budget_values // max(n, 1))

    @staticmethod
    def _flat(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def _grow(self) -> None:
        self.losses = torch.cat([self.losses, torch.full_like(self.losses, math.nan)])

    def _store(self, flat: torch.Tensor, step: int) -> None:
        if self.kept == len(self.params):
            limit = self.max_rows(self.params.shape[1])
            if len(self.params) < limit:  # room in the budget: double the buffer
                rows = min(2 * len(self.params), limit)
                more = torch.full((rows - len(self.params), self.params.shape[1]), math.nan)
                self.params = torch.cat([self.params, more.to(self.params.device)])
            else:  # full: keep every other snapshot, take every 2*stride-th update from now
                half = self.params[1 : self.kept : 2].clone()
                self.params[: len(half)] = half
                self.kept, self.stride = len(half), 2 * self.stride
                if step % self.stride:  # this update is off the new stride
                    return
        self.params[self.kept] = flat
        self.kept += 1

    def append(self, losses: torch.Tensor, params_at: torch.nn.Module | None = None) -> int:
        """Store one update's per-restart losses (and the parameters after it, every
        ``stride``-th update)."""
        i = self.length
        if i >= len(self.losses):
            self._grow()
        self.losses[i] = losses.detach()
        if self.params is not None and params_at is not None and (i + 1) % self.stride == 0:
            self._store(self._flat(params_at), i + 1)
        self.length = i + 1
        return i

    def best(self, i: int) -> torch.Tensor:
        """The lowest loss over restarts at row i (NaN rows of unstarted restarts ignored)."""
        return best_of(self.losses[i])

    def latest(self) -> torch.Tensor | None:
        """The best restart's loss at the latest update (a device tensor, no sync)."""
        return None if self.length == 0 else self.best(self.length - 1)

    def rows(self, first: int = 0, last: int | None = None) -> torch.Tensor:
        return self.losses[first : self.length if last is None else last]

    def table(self) -> torch.Tensor:
        """Shape (updates, restarts), on the CPU."""
        return self.losses[: self.length].cpu()

    @property
    def every_update(self) -> bool:
        """Whether the snapshots hold every update (no thinning so far)."""
        return self.stride == 1

    def trajectory(self, with_start: bool = False) -> torch.Tensor | None:
        """The parameter snapshots (after updates ``snapshot_steps()``), optionally the start
        first; with no thinning, row i is the point after update i."""
        if self.params is None:
            return None
        path = self.params[: self.kept].cpu()
        if with_start and self.initial_params is not None:
            path = torch.cat([self.initial_params.cpu().unsqueeze(0), path])
        return path

    def snapshot_steps(self) -> torch.Tensor:
        """The number of updates done at each stored snapshot."""
        return torch.arange(1, self.kept + 1) * self.stride

    def state_dict(self, with_params: bool = True) -> dict:
        return {
            "length": self.length,
            "losses": self.table(),
            "params": self.trajectory() if with_params else None,
            "kept": self.kept,
            "stride": self.stride,
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
            kept = int(state.get("kept", len(params)))
            rows = max(kept, min(len(self.losses), self.max_rows(params.shape[1])))
            self.params = torch.full((rows, params.shape[1]), math.nan, device=device)
            self.params[:kept] = params[:kept].to(device)
            self.kept, self.stride = kept, int(state.get("stride", 1))


def sync_snapshots(history: LossHistory, directory: Path) -> list[int]:
    """Write the parameter snapshots taken since the last call to ``directory`` as one chunk
    file (``chunk_<n>.pt``: their updates and values), so the files grow with the run and a
    kill keeps them; after thinning, the files are compacted to the kept snapshots. Returns
    the updates of the snapshots kept."""
    from gradlab.safe_files import save_atomically

    directory.mkdir(parents=True, exist_ok=True)
    steps = history.snapshot_steps().tolist()
    params = history.trajectory()
    written = history.written
    chunks = sorted(directory.glob("chunk_*.pt"), key=lambda f: int(f.stem.split("_")[1]))
    if len(written) > 2 * len(steps):  # mostly thinned away: one chunk of what is kept
        for f in chunks:
            f.unlink()
        chunks, written = [], set()
    new = [i for i, step in enumerate(steps) if step not in written]
    if new:
        n = int(chunks[-1].stem.split("_")[1]) + 1 if chunks else 0
        chunk = {"steps": [steps[i] for i in new], "params": params[new].clone()}
        save_atomically(chunk, directory / f"chunk_{n}.pt")
        written |= set(chunk["steps"])
    history.written = written
    return steps


def load_snapshots(directory: Path, steps: list[int]) -> torch.Tensor:
    """The snapshots of ``steps`` from a run's chunk files."""
    rows = {}
    for f in directory.glob("chunk_*.pt"):
        chunk = torch.load(f, map_location="cpu", weights_only=True)
        rows.update(zip(chunk["steps"], chunk["params"], strict=True))
    return torch.stack([rows[s] for s in steps])
