"""Pictures of the pix2pix generator's progress: input | target | output rows, and the callback that
writes a grid of them after each epoch."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf

from kerasapps.api import encode_png


def grid_rows(inputs, targets, generated) -> list[np.ndarray]:
    """One uint8 row per example: input | target | output, with 2-pixel white gaps."""
    rows = []
    for a, b, c in zip(*(np.round(to_pixels(x).numpy()).astype(np.uint8) for x in (inputs, targets, generated))):
        gap = np.full((a.shape[0], 2, 3), 255, np.uint8)
        rows.append(np.concatenate([a, gap, b, gap, c], axis=1))
    return rows


class ProgressGrid(keras.callbacks.Callback):
    """After each epoch, writes ``directory/epoch_NNN.png``: one row per fixed validation
    example, input | target | output (the same examples every epoch, to watch training).

    Example::

        ProgressGrid(datasets["validation"], workdir / "progress", count=4)
    """

    def __init__(self, validation, directory, count: int = 4):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.inputs, self.targets = next(iter(validation.unbatch().batch(count)))

    def on_epoch_end(self, epoch, logs=None):
        generated = self.model.generator(self.inputs, training=False)
        rows = grid_rows(self.inputs, self.targets, generated)
        gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
        grid = np.concatenate([part for row in rows for part in (row, gap)][:-1], axis=0)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"epoch_{epoch + 1:03d}.png").write_bytes(encode_png(grid))


def to_pixels(images):
    """[-1, 1] float images -> float 0..255."""
    return (tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0) + 1.0) * 127.5
