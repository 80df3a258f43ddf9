"""Evaluate a checkpoint: ``python eval.py ckpt_path=PATH``."""

from gradlab.evaluate import main

if __name__ == "__main__":
    main()
