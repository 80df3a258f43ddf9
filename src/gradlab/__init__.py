"""gradlab: train small networks with autograd or with hand-derived gradients."""

from .console import quiet_library_output

__version__ = "0.1.0"

quiet_library_output()
