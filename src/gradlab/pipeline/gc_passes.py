"""When Python's cycle collector runs. Each of its full passes walks every live object it
tracks: the libraries' (about 690,000 after torch and Lightning load) and a batched group's
thousands of job configs made such passes a large part of a short run or a sweep, most of
it at the process's exit. A script holds the collector off while the libraries load and
then leaves them out of its passes; a group is left out while it trains."""

import gc
from contextlib import contextmanager


def settle_libraries() -> None:
    """Import Lightning (torch with it), then, in a script (``cli.as_script`` holds the
    collector off while the libraries load), move what they made out of the collector's
    passes (``gc.freeze``) and let it run again: ~1.5 s less for each ``train.py`` (its
    start and its exit), ~10 MB more peak memory (the imports' own garbage, frozen with
    them). A no-op where the collector runs (Python, Jupyter)."""
    import lightning  # noqa: F401  (what every run loads: loaded before it is settled)

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@contextmanager
def no_gc_passes():
    """The collector off while a group's job files are made or written (a 1000-job sweep:
    6.0 s -> 3.5 s making the jobs here). What it would have collected is collected when
    it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class GroupPasses:
    """A batched sweep's groups and the collector: a group's job configs live until its
    files are written, so they stay out of its passes while it trains (``gc.freeze``).
    After a group, Python and Jupyter free its cycles at once; a script (its libraries
    settled) leaves everything frozen until its next group starts, or it exits: the pass
    that frees them walks the libraries too (1.5 s after 1000 runs under cProfile)."""

    def __init__(self) -> None:
        self.left_frozen = False  # a script's last group: freed when the next one starts
        self.script: bool | None = None  # this process froze its libraries (settle_libraries)

    @contextmanager
    def training(self):
        if self.left_frozen:  # (frozen again below, with what lives on)
            gc.unfreeze()
            gc.collect()
        if self.script is None:  # (once: it walks the frozen objects, 0.05 s after imports)
            self.script = gc.get_freeze_count() > 0
        gc.freeze()
        try:
            yield
        finally:
            self.left_frozen = self.script
            if not self.script:
                gc.unfreeze()

    def done(self) -> None:
        """The group's files are written and its objects dropped."""
        if self.script:
            gc.freeze()  # (what the group made while it trained and wrote: freed with it)
        else:
            gc.collect()
