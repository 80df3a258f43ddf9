"""gradlab: train small networks with autograd or with hand-derived gradients."""

from gradlab.errors import ConfigError
from gradlab.pipeline.library_output import quiet_library_output

__version__ = "0.1.0"
__all__ = ["ConfigError", "notebook_dir", "run"]

quiet_library_output()


def run(*overrides: str, output_dir=None, quiet: bool = False):
    """Train one run as ``python train.py OVERRIDES...`` and return a ``gradlab.api.Run``
    (metrics, history, model, figures); see ``gradlab.api``."""
    from gradlab.api import run as run_api

    return run_api(*overrides, output_dir=output_dir, quiet=quiet)


def notebook_dir(name: str):
    """A fresh folder for a notebook's runs under ``logs/notebooks/NAME``; see ``gradlab.api``."""
    from gradlab.api import notebook_dir as notebook_dir_api

    return notebook_dir_api(name)
