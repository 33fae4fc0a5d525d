"""Segmentation's LiteRT and ONNX exports: SegNet-Basic's tensor core is rebuilt with the unfused
argmax pooling (TensorFlow's fused op has no LiteRT builtin) and agrees with the trained model."""

import json

import numpy as np
import pytest

import kerasapps
from kerasapps.serving.formats import load_converted

# float32: on a CPU with bfloat16 instructions precision "auto" trains in mixed_bfloat16, and the converted float32
# files would then be compared with bfloat16 outputs (4% of pixels differ there).
SMALL = dict(epochs=1, batch_size=32, train_examples=256, eval_examples=64, image_size=(32,), width=8, precision="float32")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("segmentation-formats")
    result = kerasapps.run("segmentation", workdir=root / "run", export_dir=root / "saved_models", samples=0,
                           verbose=0, **SMALL)
    return root, result


@pytest.mark.parametrize("fmt, quantize", [("onnx", "none"), ("litert", "none"), ("litert", "float16")])
def test_segnet_converts_and_its_class_maps_agree_with_keras(trained, fmt, quantize):
    root, result = trained
    path = kerasapps.export("segmentation", workdir=root / "run", export_dir=root / "saved_models", format=fmt,
                            quantize=quantize, verbose=0).export_path
    meta = json.loads((path / "kerasapps.json").read_text())
    assert meta["classes"] == json.loads((root / "run" / "task_info.json").read_text())["class_names"]
    assert meta["outputs"][0]["shape"] == [None, 32, 32, len(meta["classes"])]
    assert "antialiased" in meta["preprocessing"] and "argmax over the last axis" in meta["postprocessing"]
    assert meta["check"]["passed"] and meta["check"]["argmax_agreement"] >= 0.98
    from kerasapps.data import shapes

    images = shapes.generate_arrays("test", 16, seed=11, image_size=32)["image"].astype(np.float32)
    expected = result.model.predict(images, verbose=0).argmax(-1)  # the trained model, fused pooling
    assert (load_converted(path).predict(images).argmax(-1) == expected).mean() >= 0.98


def test_the_tensor_core_is_the_trained_network_without_fused_pooling_or_scatter(trained):
    """The tensor core holds no fused argmax pooling and no scatter, and gives the trained model's outputs."""
    root, _ = trained
    task_run = kerasapps.runs.make_run("segmentation", use_workdir_config=True, workdir=root / "run")
    task_run.load_trained()
    core = task_run.task.tensor_core(task_run.model)
    assert all(not getattr(layer, "fused", False) and not getattr(layer, "scatter", False)
               for layer in core.model.layers)
    assert sum(hasattr(layer, "scatter") for layer in core.model.layers) == 4  # SegNet-Basic's four unpoolings
    images = next(iter(task_run.datasets["test"]))[0]
    np.testing.assert_allclose(core.model.predict(images, verbose=0), task_run.model.predict(images, verbose=0),
                               atol=1e-6)


def test_unpooling_keeps_its_zeros_under_int8(tmp_path):
    """After a ReLU the int8 zero point is -128: the unpooled zeros must still mean 0 (LiteRT's int8
    SCATTER_ND and ONE_HOT wrote raw integers that meant 2.4; the selection they were replaced by
    does not)."""
    import keras

    from kerasapps.serving.formats import TensorCore, convert
    from kerasapps_segmentation.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D

    inputs = keras.Input((8, 8, 4))
    relu = keras.layers.ReLU()(inputs)
    pooled, argmax = MaxPoolingWithArgmax2D(False)(relu)
    model = keras.Model(inputs, MaxUnpooling2D(False)([pooled, argmax, relu]))
    data = np.random.default_rng(0).normal(size=(64, 8, 8, 4)).astype(np.float32)
    convert(TensorCore(model, "", "", scores=False), "litert", "int8", tmp_path / "m.tflite", representative=data)
    expected, got = model.predict(data[:16], verbose=0), load_converted(tmp_path / "m.tflite").predict(data[:16])
    zeros = expected == 0
    assert (got[zeros] == 0).mean() > 0.95  # a tie between int8 values may move one maximum in its window
    assert np.abs(got - expected).mean() < 0.02


def test_int8_pooling_at_odd_sides_keeps_its_range_and_runs_in_litert(tmp_path):
    """An odd side is padded before pooling. A pad of the dtype's lowest value was calibrated into the
    int8 range of the pooled tensor (a scale of 1e36: every value one step), and LiteRT's XNNPACK then
    refused the model (SegNet-Basic at 90x120, whose 45x60 map pools to 23x30)."""
    import keras

    from kerasapps.serving.formats import TensorCore, convert
    from kerasapps_segmentation.layers import MaxPoolingWithArgmax2D

    inputs = keras.Input((9, 11, 4))
    relu = keras.layers.ReLU()(inputs)
    pooled, _ = MaxPoolingWithArgmax2D(False)(relu)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(pooled))  # the pooled map feeds the next encoder
    data = np.random.default_rng(0).normal(size=(64, 9, 11, 4)).astype(np.float32)
    convert(TensorCore(model, "", "", scores=False), "litert", "int8", tmp_path / "m.tflite", representative=data)
    converted = load_converted(tmp_path / "m.tflite")  # the default interpreter: XNNPACK delegate
    expected, got = model.predict(data[:16], verbose=0), converted.predict(data[:16])
    assert np.abs(got - expected).mean() < 0.02
    scales = [d["quantization"][0] for d in converted._interpreter.get_tensor_details() if d["dtype"] == np.int8]
    assert max(scales) < 1.0  # values of a few units: steps of at most a few hundredths
