"""Classification's LiteRT and ONNX exports: LeNet-5's tensor core (pixels in, probabilities out)
converts to each format, checked through each runtime, with its class names."""

import json

import numpy as np
import pytest

import kerasapps
from kerasapps.serving.formats import TOLERANCES, load_converted

# The tiny shapes run: too little trained for int8 (its 24 classes' scores nearly tie, and int8
# flips near-ties: the core's fake task and the MNIST benchmark cover int8).
SMALL = dict(epochs=1, batch_size=32, train_examples=256, eval_examples=64, image_size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classification-formats")
    result = kerasapps.run("classification", workdir=root / "run", export_dir=root / "saved_models", samples=0,
                           verbose=0, **SMALL)
    return root, result


@pytest.mark.parametrize("fmt, quantize", [("onnx", "none"), ("litert", "none"), ("litert", "float16")])
def test_lenet_converts_with_its_classes_and_agrees_with_keras(trained, fmt, quantize):
    root, result = trained
    path = kerasapps.export("classification", workdir=root / "run", export_dir=root / "saved_models", format=fmt,
                            quantize=quantize, verbose=0).export_path
    assert path.parent == root / "saved_models" / f"classification-{fmt}"
    meta = json.loads((path / "kerasapps.json").read_text())
    info = json.loads((root / "run" / "task_info.json").read_text())
    assert meta["classes"] == info["class_names"] and len(meta["classes"]) == 24
    assert meta["inputs"][0]["shape"] == [None, 32, 32, 3] and meta["outputs"][0]["shape"] == [None, 24]
    assert "32x32" in meta["preprocessing"] and "softmax applied" in meta["postprocessing"]
    assert meta["check"]["passed"] and meta["check"]["argmax_agreement"] >= TOLERANCES[quantize]["agreement"]
    from kerasapps.data import shapes

    images = shapes.generate_arrays("test", 32, seed=11, image_size=32)["image"].astype(np.float32)
    probabilities = load_converted(path).predict(images)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=0.02)  # softmax inside the file
    agreement = (probabilities.argmax(-1) == result.model.predict(images, verbose=0).argmax(-1)).mean()
    assert agreement >= TOLERANCES[quantize]["agreement"] - 1 / 32  # one flip of 32 allowed on unseen scenes
