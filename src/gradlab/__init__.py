"""gradlab: train small networks with autograd or with hand-derived gradients."""

__version__ = "0.1.0"
