"""Train a model: ``python train.py [group=option ...] [key=value ...]`` (see --help)."""

from gradlab.cli import train

if __name__ == "__main__":
    train()
