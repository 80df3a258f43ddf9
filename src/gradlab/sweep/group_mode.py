"""How a batched group trains (``hydra.launcher.exact``): each run's matmuls and optimizer
step as its own run computes them (bit-identical to it), or torch's batched matmuls (equal to
rounding, faster for many runs). Without torch: Hydra imports the launcher to list its
plugins (``train.py --help``)."""

BATCHABLE_INEXACT = ("seed", "optim.lr")  # hydra.launcher.exact=false: one group for all runs


def check_mode(exact) -> None:
    """``hydra.launcher.exact`` is true, false or auto."""
    if exact not in (True, False, "auto"):
        from gradlab.errors import ConfigError

        raise ConfigError(f"hydra.launcher.exact: true, false or auto; got {exact!r}")


def mode_of(values: list[dict], exact, exact_up_to: int, scheduled=False) -> tuple[bool, str]:
    """(whether a group whose runs have these batchable ``values`` trains exact, what its line
    adds): ``exact: auto`` trains a group of more than ``exact_up_to`` runs whose options
    differ only in the learning rate with batched matmuls (each run equal to rounding);
    ``scheduled`` runs of several rates train exact (each rate's schedule its own)."""
    from gradlab.optim.per_run import rates_step_run_by_run

    rates = [v["optim.lr"] for v in values if "optim.lr" in v]
    if exact is not True and rates_step_run_by_run(scheduled, rates):
        return True, " (a scheduler over several rates: exact, each rate scheduled on its own)"
    if exact != "auto":
        return exact, ""
    varies = {key for v in values for key in v}
    if len(values) <= exact_up_to or not varies <= set(BATCHABLE_INEXACT):
        return True, ""
    return False, (
        f" (hydra.launcher.exact=auto: more than {exact_up_to} runs, so batched matmuls: "
        "each job equals its solo run to rounding; exact=true for bit-identical)"
    )
