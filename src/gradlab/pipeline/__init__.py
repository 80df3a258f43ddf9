"""One run: assemble, fit, record (run.py); building, composing, checking and recording it."""
