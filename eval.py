"""Evaluate a checkpoint: ``python eval.py ckpt_path=PATH``."""

from gradlab.cli import evaluate

if __name__ == "__main__":
    evaluate()
