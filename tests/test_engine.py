"""The training loop: Keras contracts (callbacks, metrics, train_step) and strategy-correct updates."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from kerasapps.training.engine import BestWeights, ResumableBackup, StopOnNaN, Trainer, TrainingDiverged  # noqa: E402


def regression_data(n=64, batch=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def linear_model(lr=0.05):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse", metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    return model


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch", batch))

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_fit_drives_keras_callbacks_and_metrics_like_fit():
    data = regression_data()
    model = linear_model()
    recorder = Recorder()
    history = Trainer(model, tf.distribute.get_strategy()).fit(
        data, epochs=3, validation_data=data, callbacks=[recorder], progress_bar=False)
    assert history.history["loss"][2] < history.history["loss"][0]
    assert recorder.events[0] == "train_begin" and recorder.events[-1] == "train_end"
    assert [e[1] for e in recorder.events if e[0] == "batch"] == [0, 1, 2, 3] * 3
    assert ("epoch_end", 2, ["loss", "mae", "val_loss", "val_mae"]) in recorder.events
    # The epoch's mae equals Keras's own evaluate on the same weights.
    expected = model.evaluate(data, verbose=0, return_dict=True)
    got = Trainer(model, tf.distribute.get_strategy()).evaluate(data)
    assert got["mae"] == pytest.approx(expected["mae"], rel=1e-5)
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_steps_per_epoch_and_steps_per_execution():
    model = linear_model()
    recorder = Recorder()
    Trainer(model, tf.distribute.get_strategy(), steps_per_execution=3).fit(
        regression_data(), epochs=2, steps_per_epoch=7, callbacks=[recorder], progress_bar=False)
    assert [e[1] for e in recorder.events if e[0] == "batch"] == [2, 5, 6] * 2
    assert int(model.optimizer.iterations) == 14


def test_without_steps_per_epoch_each_epoch_is_one_whole_pass_reshuffled():
    class Seen(keras.Model):
        def train_step(self, data):
            x, _ = data
            return {"count": tf.cast(tf.shape(x)[0], tf.float32), "total": tf.reduce_sum(x),
                    "squares": tf.reduce_sum(x * x), "first": x[0, 0]}

    class Batches(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append([])

        def on_train_batch_end(self, batch, logs=None):
            self.epochs[-1].append(logs)

    inputs = keras.Input((1,))
    model = Seen(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    ids = tf.data.Dataset.range(10).map(lambda i: (tf.cast([i], tf.float32), tf.zeros([1])))
    data = ids.shuffle(10, seed=3, reshuffle_each_iteration=True).batch(3)  # 3 + 3 + 3 + 1
    seen = Batches()
    Trainer(model, tf.distribute.get_strategy()).fit(data, epochs=4, callbacks=[seen], progress_bar=False)
    for epoch in seen.epochs:  # every id once: 0..9
        assert [b["count"] for b in epoch] == [3, 3, 3, 1]
        assert (sum(b["total"] for b in epoch), sum(b["squares"] for b in epoch)) == (45, 285)
    assert len({tuple(b["first"] for b in epoch) for epoch in seen.epochs}) > 1  # a new order each pass


def test_early_stopping_and_custom_train_step_are_honoured():
    calls = []

    class Custom(keras.Model):
        def train_step(self, data):
            calls.append(1)  # traced once: Python runs at trace time only
            return super().train_step(data)

    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    model = Custom(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.SGD(0.0), "mse")  # nothing improves
    history = Trainer(model, tf.distribute.get_strategy()).fit(
        regression_data(), epochs=10, validation_data=regression_data(),
        callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=1)], progress_bar=False)
    assert len(history.history["loss"]) == 2
    assert calls  # the override ran


def test_nan_loss_stops_with_a_clear_error():
    model = linear_model(lr=1e30)
    with pytest.raises(TrainingDiverged, match="became (nan|inf) at batch"):
        Trainer(model, tf.distribute.get_strategy()).fit(
            regression_data(), epochs=5, callbacks=[StopOnNaN()], progress_bar=False)


def test_backup_restores_model_optimizer_epoch_and_history(tmp_path):
    data = regression_data()
    model = linear_model()
    model.optimizer.build(model.trainable_variables)
    backup = ResumableBackup(tmp_path / "backup", model)
    best = BestWeights(tmp_path / "best.weights.h5", "val_loss", "min")
    Trainer(model, tf.distribute.get_strategy()).fit(
        data, epochs=2, validation_data=data, callbacks=[backup, best], progress_bar=False)
    again = linear_model()
    again.optimizer.build(again.trainable_variables)
    restored = ResumableBackup(tmp_path / "backup", again, write=False)
    assert restored.restore() == 2
    assert [h["epoch"] for h in restored.history] == [1, 2]
    assert int(again.optimizer.iterations) == int(model.optimizer.iterations) == 8
    np.testing.assert_allclose(again.get_weights()[0], model.get_weights()[0])
    assert (tmp_path / "best.weights.h5").exists() and best.best == pytest.approx(min(h["val_loss"] for h in restored.history))
    assert not list(tmp_path.glob(".*tmp*"))


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kerasapps.training.engine import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=(32,))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)  # one global batch

    def weights_after_one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(3)
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(3)])
            model.compile(keras.optimizers.Adam(0.01),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            model.optimizer.build(model.trainable_variables)
        trainer = Trainer(model, strategy)
        history = trainer.fit(data, epochs=1, progress_bar=False)
        return [w.tolist() for w in model.get_weights()], history.history["loss"][0], strategy.num_replicas_in_sync

    one = weights_after_one_step(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = weights_after_one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({"one": one, "two": two}))
""")


def test_one_step_on_two_replicas_equals_one_step_on_one_device():
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    (w1, loss1, r1), (w2, loss2, r2) = data["one"], data["two"]
    assert (r1, r2) == (1, 2)
    assert math.isclose(loss1, loss2, rel_tol=1e-5)  # the logged loss is the true mean, not a replica's share
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6)
