"""The benchmark suite behind ``python -m benchmarks`` (issue 9).

- :mod:`~benchmarks.suite.tasks`: one entry per task, beside ``benchmarks/reference/<task>.py``;
- :mod:`~benchmarks.suite.measure`: runs the measurements (interleaved worker processes);
- :mod:`~benchmarks.suite.worker`: one side (reference / kerasapps) in its own process;
- :mod:`~benchmarks.suite.serve_probe`: SavedModel latency in a fresh process;
- :mod:`~benchmarks.suite.flops`: FLOPs from the layers and the CPU's peak;
- :mod:`~benchmarks.suite.report`: RESULTS.md.
"""

PREFIX = "@@bench "  # marks the workers' protocol lines among TensorFlow's output
