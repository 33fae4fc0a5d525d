"""Training callbacks of the text-to-image task: a grid of the generator's progress after each epoch."""

from __future__ import annotations

import keras


class ProgressGrid(keras.callbacks.Callback):
    """After each epoch, ``epoch_NNN.png``: the demo captions and a few held-out ones,
    the same noise every epoch, so a person sees the generator learn."""

    def __init__(self, task, directory):
        super().__init__()
        self.task, self.directory = task, directory

    def on_epoch_end(self, epoch, logs=None):
        from kerasapps_text_to_image.task import DEMO_CAPTIONS, write_grid  # the task's own picture writer

        captions = list(self.task.captions["validation"][:4]) + list(DEMO_CAPTIONS)
        write_grid(self.task, self.model, captions, self.directory / f"epoch_{epoch + 1:03d}", draws=4)
