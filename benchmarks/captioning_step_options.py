"""Why the captioning task's tuned settings stay near 1.0x on CPU: one training step of its
Show-and-Tell model (the default sizes: 4 conv blocks 16-128, embedding 128, LSTM 256,
17 steps, batch 64) under float32, mixed_bfloat16 and an unrolled LSTM, each in a fresh
process, in CPU milliseconds per step (all threads) and wall milliseconds per step.

    python -m benchmarks.captioning_step_options [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

VARIANTS = [("float32", False), ("float32", True), ("mixed_bfloat16", False), ("mixed_bfloat16", True)]


def measure(policy: str, unroll: bool, steps: int) -> dict:
    """One variant, in this process: ms per training step after a warm-up."""
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)
    vocab, length, embed, units, batch = 60, 17, 128, 256, 64
    image = keras.Input((64, 64, 3))
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Rescaling(1 / 255.0)(image)
    for filters in (16, 32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        x = keras.layers.MaxPooling2D(2)(x)
    features = keras.layers.Dense(embed, activation="relu")(keras.layers.Flatten()(x))
    words = keras.layers.Embedding(vocab, embed, mask_zero=True)(tokens)
    sequence = keras.layers.Concatenate(axis=1)([keras.layers.Reshape((1, embed))(features), words])
    hidden = keras.layers.LSTM(units, return_sequences=True, unroll=unroll)(sequence)[:, 1:]
    logits = keras.layers.Dense(vocab, dtype="float32")(keras.layers.Dropout(0.2)(hidden))
    model = keras.Model([image, tokens], logits)
    model.compile(keras.optimizers.Adam(2e-3, clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, 64, 64, 3)).astype(np.float32)
    ids = rng.integers(1, vocab, (batch, length)).astype(np.int32)
    ids[:, 12:] = 0  # padding, as in real batches
    data = tf.data.Dataset.from_tensors(((images, ids), rng.integers(1, vocab, (batch, length)))).repeat()
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return {"policy": policy, "unroll": unroll,
            "cpu_ms_per_step": round((time.process_time() - cpu) / steps * 1000, 1),
            "wall_ms_per_step": round((time.perf_counter() - wall) / steps * 1000, 1)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--one", nargs=2, metavar=("POLICY", "UNROLL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1] == "1", args.steps)))
        return []
    rows = []
    for policy, unroll in VARIANTS:  # a fresh process each: the mixed-precision policy is global
        out = subprocess.run([sys.executable, "-m", "benchmarks.captioning_step_options", "--steps", str(args.steps),
                              "--one", policy, "1" if unroll else "0"], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["cpu_ms_per_step"]
    for row in rows:
        print(f"{row['policy']:15s} unroll={str(row['unroll']):5s} {row['cpu_ms_per_step']:7.1f} CPU ms/step "
              f"{row['wall_ms_per_step']:7.1f} wall ms/step  speed-up {base / row['cpu_ms_per_step']:.2f}x")
    return rows


if __name__ == "__main__":
    main()
