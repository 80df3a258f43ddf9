"""Train a model: ``python train.py [group=option ...] [key=value ...]`` (see --help)."""

from gradlab.train import main

if __name__ == "__main__":
    main()
