"""Serving latency of an exported SavedModel in a fresh process that never imports Keras.

    python -m benchmarks.suite.serve_probe SAVED_MODEL INPUTS.npy INPUT_NAME CALLS

INPUTS.npy holds one value of INPUT_NAME per example; an INPUTS.npz instead holds one array
per signature input (e.g. text-to-image's ``text`` and ``seed``), one value per example in each.
Prints one JSON line: load seconds, batch-1 latency p50/p99 (ms) and batch-32 examples/s
through the ``serving_default`` signature.
"""

import json
import sys
import time


def main():
    path, inputs_path, name, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    import numpy as np
    import tensorflow as tf

    started = time.perf_counter()
    serve = tf.saved_model.load(path).signatures["serving_default"]
    load_seconds = time.perf_counter() - started
    if inputs_path.endswith(".npz"):
        with np.load(inputs_path, allow_pickle=True) as saved:
            columns = {key: saved[key] for key in saved.files}
    else:
        columns = {name: np.load(inputs_path, allow_pickle=True)}
    count = min(len(values) for values in columns.values())

    def examples(indices):
        # Indexing the arrays keeps each input's dtype (bytes -> tf.string, int64 seeds stay int64).
        return {key: tf.constant(values[[i % count for i in indices]]) for key, values in columns.items()}

    one = examples(range(1))
    many = examples(range(32))
    started = time.perf_counter()
    serve(**one)
    first_call = time.perf_counter() - started
    serve(**many)
    budget = 8.0  # seconds per measurement: heavy models (beam search) get fewer calls

    def timed(make_input, n):
        times, begun = [], time.perf_counter()
        while len(times) < n and (len(times) < 5 or time.perf_counter() - begun < budget):
            x = make_input(len(times))
            started = time.perf_counter()
            serve(**x)
            times.append(time.perf_counter() - started)
        return times

    latencies = timed(lambda i: examples([i]), calls)
    batches = timed(lambda i: many, max(3, calls // 8))
    b32 = 32 * len(batches) / sum(batches)
    calls = len(latencies)
    print(json.dumps({"load_seconds": load_seconds, "first_call_seconds": first_call,
                      "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                      "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                      "batch32_examples_per_second": b32, "calls": calls}))


if __name__ == "__main__":
    main()
