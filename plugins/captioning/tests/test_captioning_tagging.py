"""The tagging task (visual concepts from captions): tags, labels, average precision, a run end to end."""

import json

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import check_export, write_scene_images

pytest.importorskip("tensorflow")


def test_tags_are_the_words_most_photos_use_without_function_words():
    from kerasapps_captioning.tagging import caption_words, choose_tags, tag_labels

    words = caption_words([["A dog runs on the grass.", "A brown dog!"], ["The dog swims"], ["A cat, on grass"]])
    assert words[0] == {"a", "dog", "runs", "on", "the", "grass", "brown"}
    tags = choose_tags(words, count=3, min_images=2)
    assert tags == ["dog", "grass"]  # 3 and 2 photos; "a", "on", "the" are function words; the rest are in one photo
    assert choose_tags(words, count=1, min_images=1) == ["dog"]
    assert tag_labels(words, ["dog", "grass", "cat"]).tolist() == [[1, 1, 0], [1, 0, 0], [0, 1, 1]]


def test_average_precision_by_hand():
    from kerasapps_captioning.tagging import average_precision

    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.4]])
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    # Tag 0: positives at ranks 1 and 3: (1/1 + 2/3) / 2. Tag 1 has no positive: NaN, left out of a mean.
    ap = average_precision(scores, labels)
    assert ap[0] == pytest.approx((1 + 2 / 3) / 2) and np.isnan(ap[1])
    assert average_precision(scores[:, :1], np.array([[0], [0], [0], [1]]))[0] == pytest.approx(1 / 4)


@pytest.mark.slow
def test_tagging_trains_scores_and_serves_its_tags(tmp_path):
    images = write_scene_images(tmp_path / "inputs", count=3)
    run = kerasapps.run("tagging", epochs=2, batch_size=32, train_examples=256, eval_examples=64, image_size=32,
                        cnn_filters=(8, 16), top_k=4, samples=0, workdir=tmp_path / "run",
                        export_dir=tmp_path / "saved_models", verbose=0)
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    result = check_export(run.export_path, images, out=tmp_path / "predictions")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert metrics == run.metrics
    assert 0 < metrics["map_image_blind"] < 1 and 0 < metrics["map"] <= 1 and 0 <= metrics["precision_at_5"] <= 1
    tags = json.loads((tmp_path / "run" / "task_info.json").read_text())["tags"]
    assert "circle" in tags and "the" not in tags and "a" not in tags
    served = result.serving
    assert served["tags"]["shape"] == [3, 4] and served["scores"]["shape"] == [3, 4]
    for row_tags, row_scores in zip(served["tags"]["values"], served["scores"]["values"]):
        assert set(row_tags) <= set(tags)
        assert row_scores == sorted(row_scores, reverse=True) and all(0 <= s <= 1 for s in row_scores)


@pytest.mark.slow
def test_captioning_starts_from_a_tagging_runs_network(tmp_path):
    import keras
    import tensorflow as tf

    from kerasapps.training.transfer import read_trained_run

    small = dict(epochs=1, batch_size=16, train_examples=64, eval_examples=16, image_size=32, cnn_filters=(8, 16),
                 verbose=0)
    kerasapps.train("tagging", **small, workdir=tmp_path / "tags")
    kerasapps.train("captioning", **small, lstm_units=8, embed_dim=8, encoder="tagging",
                    encoder_weights=str(tmp_path / "tags"), freeze_encoder=True, cache_features=True,
                    workdir=tmp_path / "cap")
    # The frozen encoder is the tagger below its classifier, weights and all.
    tagger = read_trained_run(tmp_path / "tags", task="tagging").build_model()
    captioner = read_trained_run(tmp_path / "cap", task="captioning").build_model()
    below_head = keras.Model(tagger.input, tagger.get_layer("dropout").input)
    images = tf.random.uniform([2, 32, 32, 3], 0, 255, seed=1)
    np.testing.assert_allclose(captioner.get_layer("encoder").get_layer("image_features")(images), below_head(images),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(kerasapps.UsageError, match="encoder=tagging starts from a kerasapps tagging run"):
        kerasapps.train("captioning", **small, encoder="tagging", encoder_weights="none", workdir=tmp_path / "c2")
