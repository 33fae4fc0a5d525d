"""The tfds: path, offline: TFDS's mock data through the real task code, and the no-network message."""

import numpy as np
import pytest

import kerasapps


def test_classification_reads_mocked_tfds_mnist_and_trains():
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    from kerasapps.data.sources import DatasetSource
    from kerasapps.training.engine import Trainer
    from kerasapps_classification.task import ClassificationTask

    task = ClassificationTask(ClassificationTask.Config(batch_size=16), DatasetSource("tfds:mnist", "tfds", "mnist"))
    with tfds.testing.mock_data(num_examples=48):
        datasets = task.build_datasets()
    assert task.info["class_names"] == [str(i) for i in range(10)]
    assert (task.info["image_size"], task.info["channels"]) == (28, 1)
    images, labels = next(iter(datasets["train"]))
    assert images.shape[1:] == (28, 28, 1) and images.dtype == tf.float32
    assert labels.dtype == tf.int64 and np.all((labels.numpy() >= 0) & (labels.numpy() < 10))
    model = task.build_model()
    task.build_training_state(model, (images, labels))
    trainer = Trainer(model, tf.distribute.get_strategy())
    history = trainer.fit(datasets["train"], epochs=1, validation_data=datasets["validation"], progress_bar=False)
    assert np.isfinite(history.history["loss"][0]) and "val_accuracy" in history.history
    assert set(trainer.evaluate(datasets["test"])) == {"loss", "accuracy", "top3_accuracy"}


# Downloads go to a closed port on this machine: the test never reaches outside, whatever the network.
NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}


def test_tfds_offline_names_the_offline_alternatives(tmp_path, monkeypatch):
    for name, value in NO_NETWORK.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(kerasapps.UsageError) as refused:
        kerasapps.train("classification", dataset="tfds:mnist", data_dir=tmp_path / "tfds", workdir=tmp_path / "run",
                        verbose=0)
    message = str(refused.value)
    assert "could not download or prepare TFDS dataset 'mnist'" in message
    assert "--dataset shapes" in message and "folder:PATH" in message


def test_unknown_tfds_name_is_a_usage_error(tmp_path):
    with pytest.raises(kerasapps.UsageError, match="unknown or unavailable TFDS dataset 'no_such_dataset_xyz'"):
        kerasapps.train("classification", dataset="tfds:no_such_dataset_xyz", workdir=tmp_path, verbose=0)
