"""Train a model: ``python train.py [group=option ...] [key=value ...]`` (see --help)."""

from gradlab.cli import as_script, train

if __name__ == "__main__":
    as_script(train)
