"""gradlab: train small networks with autograd or with hand-derived gradients."""

from .console import quiet_library_output

__version__ = "0.1.0"

quiet_library_output()


def run(*overrides: str, output_dir=None):
    """Train one run as ``python train.py OVERRIDES...`` and return a ``gradlab.api.Run``
    (metrics, history, model, figures); see ``gradlab.api``."""
    from .api import run as _run

    return _run(*overrides, output_dir=output_dir)
