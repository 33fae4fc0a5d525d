"""Measurements of kerasapps: speed against plain Keras scripts (`python -m benchmarks`) and
accuracy on real data (the `*_*.py` scripts). The tests run only the suite's `--tiny` mode, for
correctness, never for speed."""
