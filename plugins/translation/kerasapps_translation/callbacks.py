"""Training callbacks of the translation task: validation BLEU after each epoch, and a time budget."""

from __future__ import annotations

import pathlib
import sys
import time

import keras

from kerasapps_translation.metrics import translation_scores


class ValidationBleu(keras.callbacks.Callback):
    """Greedy-decodes the validation split after each epoch: ``val_bleu`` in the epoch's
    logs (seen by the callbacks after this one: the epoch line, the run's history) and a
    row ``epoch,seconds,val_bleu`` (seconds since training began) in ``path``."""

    def __init__(self, task, path: pathlib.Path):
        super().__init__()
        self.task, self.path = task, path

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        if not self.path.exists():
            self.path.write_text("epoch,seconds,val_bleu\n")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        references = [" ".join(r) for r in self.task.references["validation"]]
        hypotheses = self.task.translate_split(self.model, "validation", beam_size=1)
        bleu = translation_scores(hypotheses, references)["bleu"]
        if logs is not None:
            logs["val_bleu"] = bleu
        with self.path.open("a") as out:
            out.write(f"{epoch + 1},{seconds:.0f},{bleu:.2f}\n")


class TrainingTimeBudget(keras.callbacks.Callback):
    """Stops training at an epoch's end when one more epoch (as long as the longest so
    far) would end past ``seconds`` since training began."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.started = self.epoch_started = time.perf_counter()
        self.longest = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.epoch_started)
        if now - self.started + self.longest > self.seconds:
            print(f"translation: stopping after epoch {epoch + 1}: another would overrun "
                  f"train_minutes={self.seconds / 60:g}", file=sys.stderr)
            self.model.stop_training = True
