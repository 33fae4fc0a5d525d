"""LiteRT and ONNX exports (`kerasapps export --format`): each format round-trips through its own
runtime within the stated tolerance, int8 is smaller than float32, the SavedModel folder and
`kerasapps serve` are untouched, and a refusal or a failed check writes nothing."""

import json
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasapps
from kerasapps.errors import ExportCheckFailed, UsageError
from kerasapps.serving import formats
from tests.conftest import FAKE, FAKE_ENV, ROOT, cli

sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with plugins=[...]
from kerasapps_fake import FakeTask  # noqa: E402

PLUGINS = ["kerasapps_fake"]
# Wide enough that weights, not the file's fixed overhead, make its size; trained enough that the
# scores are decisive (an int8 check counts agreeing predictions).
SETTINGS = {"epochs": 4, "units": 32, "filters": (32,), "train_examples": 256, "eval_examples": 64, "seed": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    result = kerasapps.run("fake", plugins=PLUGINS, workdir=root / "run", export_dir=root / "saved_models",
                           samples=0, verbose=0, **SETTINGS)
    return root, result


def _scenes(count=48):
    """Test scenes the export's check never saw (another seed), as the model takes them."""
    from kerasapps.api import shapes

    return shapes.generate_arrays("test", count, seed=7, image_size=16)["image"].astype(np.float32)


def _export(root, tmp_path, fmt, quantize="none"):
    return kerasapps.export("fake", plugins=PLUGINS, workdir=root / "run", export_dir=tmp_path / "saved_models",
                            format=fmt, quantize=quantize, verbose=0).export_path


@pytest.mark.parametrize("fmt, quantize", [("onnx", "none"), ("litert", "none"), ("litert", "float16"),
                                           ("litert", "int8")])
def test_each_format_round_trips_through_its_own_runtime(trained, tmp_path, fmt, quantize):
    root, result = trained
    path = _export(root, tmp_path, fmt, quantize)
    assert path == tmp_path / "saved_models" / f"fake-{fmt}" / "1"
    assert sorted(p.name for p in path.iterdir()) == sorted([formats.FILE_NAMES[fmt], "kerasapps.json"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["1"]  # no staging folder left
    meta = json.loads((path / "kerasapps.json").read_text())
    assert (meta["task"], meta["format"], meta["quantization"]) == ("fake", fmt, quantize)
    assert meta["bytes"] == (path / formats.FILE_NAMES[fmt]).stat().st_size
    assert [(i["shape"], i["dtype"]) for i in meta["inputs"]] == [([None, 16, 16, 3], "float32")]
    assert [(o["shape"], o["dtype"]) for o in meta["outputs"]] == [([None, 6], "float32")]
    assert meta["classes"] == json.loads((root / "run" / "task_info.json").read_text())["colours"]
    assert "16x16" in meta["preprocessing"] and "0..255" in meta["preprocessing"]
    assert meta["check"]["passed"] and meta["check"]["examples"] == 64
    assert meta["check"]["tolerance"] == formats.TOLERANCES[quantize]
    assert meta["source"]["workdir"] == str(root / "run") and meta["source"]["weights"].endswith("best.weights.h5")
    assert ("representative_examples" in meta) == (quantize == "int8")
    # Through the runtime on scenes the check never saw: within the same tolerance.
    scenes = _scenes()
    expected = result.model.predict(scenes, verbose=0)
    got = kerasapps.serving.formats.load_converted(path).predict(scenes, batch_size=5)  # batches of another size
    tolerance = formats.TOLERANCES[quantize]
    if "atol" in tolerance:
        assert (np.abs(got - expected) <= tolerance["atol"]).mean() >= tolerance["within"]
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= tolerance["agreement"]
    if "decided_margin" in tolerance:
        decided = formats.decided_agreement(expected, got, tolerance["decided_margin"])
        assert decided["agreement"] is None or decided["agreement"] >= tolerance["decided_agreement"]
        assert meta["check"]["decided_agreement"] >= tolerance["decided_agreement"]
        assert 0 < meta["check"]["decided_share"] <= 1
    assert sorted(p.name for p in (tmp_path / "saved_models").iterdir()) == [f"fake-{fmt}"]


class _Outputs:  # a model or converted file that answers with fixed scores
    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float32)

    def predict(self, inputs, **kwargs):
        return self.scores


def _int8_check(expected, got):
    core = formats.TensorCore(_Outputs(expected), "", "", scores=True)
    return formats.check_converted(_Outputs(got), core, np.zeros((len(expected), 1), np.float32), "int8")


def test_int8_may_flip_near_ties_but_not_clear_decisions():
    # 20 outputs: 16 clear (lead 0.6), 4 near-ties (lead 0.02).
    clear, tie = [0.8, 0.2, 0.0], [0.49, 0.47, 0.04]
    expected = [clear] * 16 + [tie] * 4
    two_ties_flipped = [clear] * 16 + [[0.47, 0.49, 0.04]] * 2 + [tie] * 2
    check = _int8_check(expected, two_ties_flipped)
    assert check["passed"] and check["argmax_agreement"] == 0.9 and check["decided_agreement"] == 1.0
    assert check["decided_share"] == 0.8
    one_clear_flipped = [[0.2, 0.8, 0.0]] + [clear] * 15 + [tie] * 4  # 95% agree overall, 15/16 where clear
    check = _int8_check(expected, one_clear_flipped)
    assert not check["passed"] and check["argmax_agreement"] == 0.95
    assert check["reason"] == ("argmax agreement 0.9375 where the Keras model's top score leads by >= 0.1 x 1 "
                               "(0.80 of the outputs), < 0.98")
    three_ties_flipped = [clear] * 16 + [[0.47, 0.49, 0.04]] * 3 + [tie]  # 85% overall: broken, ties or not
    assert _int8_check(expected, three_ties_flipped)["reason"] == "argmax agreement 0.8500 < 0.9"
    all_ties = _int8_check([tie] * 4, [tie] * 4)  # nothing clear: the overall agreement alone decides
    assert all_ties["passed"] and all_ties["decided_agreement"] is None and all_ties["decided_share"] == 0.0


def test_a_task_sets_its_own_int8_figures_and_mistakes_in_them_are_named():
    clear = [0.8, 0.2, 0.0]
    expected, got = [clear] * 10, [[0.2, 0.8, 0.0]] + [clear] * 9  # 90% overall, 90% where clear
    core = formats.TensorCore(_Outputs(expected), "", "", tolerances={"int8": {"decided_agreement": 0.85}})
    inputs = np.zeros((10, 1), np.float32)
    assert not _int8_check(expected, got)["passed"]  # the default figures refuse it
    check = formats.check_converted(_Outputs(got), core, inputs, "int8")
    assert check["passed"] and check["tolerance"] == {"agreement": 0.9, "decided_margin": 0.1,
                                                      "decided_agreement": 0.85}
    assert core.tolerance("none") == formats.TOLERANCES["none"]  # other quantizations keep the defaults
    values_only = formats.TensorCore(None, "", "", scores=False, tolerances={"int8": {"atol": 0.2}})
    assert values_only.tolerance("int8") == {"atol": 0.2, "within": 0.99}
    for tolerances, message in (({"int4": {}}, "no quantization 'int4'"),
                                ({"int8": {"agreemnt": 0.8}}, "unknown agreemnt"),
                                ({"int8": {"agreement": 1.5}}, "expected a number in 0..1, got 1.5"),
                                ({"float16": {"decided_margin": 0.1}}, "decided_margin and decided_agreement go")):
        with pytest.raises(ValueError, match=message):
            formats.TensorCore(None, "", "", tolerances=tolerances)
    with pytest.raises(ValueError, match="agreement figures need scores=True"):
        formats.TensorCore(None, "", "", scores=False, tolerances={"int8": {"agreement": 0.8}})


def test_int8_is_smaller_than_float32_and_float16_between(trained, tmp_path):
    root, _ = trained
    sizes = {q: (_export(root, tmp_path, "litert", q) / "model.tflite").stat().st_size
             for q in ("none", "float16", "int8")}
    assert sizes["int8"] < 0.4 * sizes["none"] and sizes["int8"] < sizes["float16"] < 0.7 * sizes["none"], sizes
    assert sorted(p.name for p in (tmp_path / "saved_models" / "fake-litert").iterdir()) == ["1", "2", "3"]


def test_the_savedmodel_folder_and_kerasapps_serve_are_untouched(trained, tmp_path):
    root, _ = trained
    from kerasapps.serving.server.repository import Repository

    _export(root, tmp_path, "onnx")
    saved = kerasapps.export("fake", plugins=PLUGINS, workdir=root / "run", export_dir=tmp_path / "saved_models",
                             verbose=0).export_path
    assert saved == tmp_path / "saved_models" / "fake" / "1"  # the default format, numbered on its own
    assert sorted(p.name for p in saved.parent.iterdir()) == ["1"]
    assert Repository(tmp_path / "saved_models")._scan() == {"fake": {1: saved}}


def test_a_failed_check_writes_nothing_and_is_one_line_exit_1(trained, tmp_path, monkeypatch):
    root, _ = trained
    from click.testing import CliRunner

    from kerasapps.cli import cli as command

    monkeypatch.setitem(formats.TOLERANCES, "none", {"atol": 1e-4, "within": 1.01})  # no model can pass
    with pytest.raises(ExportCheckFailed, match=r"disagrees with the Keras model on 64 held-out examples"):
        _export(root, tmp_path, "onnx")
    outcome = CliRunner().invoke(command, [*FAKE, "export", "fake", "--workdir", str(root / "run"), "--export-dir",
                                           str(tmp_path / "saved_models"), "--format", "litert"])
    assert outcome.exit_code == 1, outcome.output
    assert [line for line in outcome.output.splitlines() if line.startswith("error:")] == [
        line for line in outcome.output.splitlines() if "disagrees" in line]
    assert "nothing written" in outcome.output
    assert not (tmp_path / "saved_models").exists()


def test_a_file_its_runtime_cannot_run_is_one_line_exit_1_writing_nothing(trained, tmp_path, monkeypatch):
    # As LiteRT's XNNPACK delegate did for an int8 SegNet-Basic at 90x120 ("failed to prepare") until
    # its pooling's padding stopped spoiling the calibrated range (test_segmentation_formats.py).
    root, _ = trained

    def cannot_run(self, inputs, batch_size=32):
        raise RuntimeError("failed to create XNNPACK runtimeNode number 242 (TfLiteXNNPackDelegate) failed to prepare.")

    monkeypatch.setattr(formats.ConvertedModel, "predict", cannot_run)
    with pytest.raises(ExportCheckFailed, match=r"^the litert int8 model does not run in ai-edge-litert \S+ \(failed "
                                                r"to create XNNPACK runtimeNode number 242 \(TfLiteXNNPackDelegate\) "
                                                r"failed to prepare\.\); nothing written; --quantize float16 keeps "
                                                r"more precision$"):
        _export(root, tmp_path, "litert", "int8")
    assert not (tmp_path / "saved_models").exists()


class ArgmaxPoolTask(FakeTask):
    """The fake task with a pooling op that has no LiteRT builtin (TensorFlow's fused argmax pooling)."""

    name = "fake-argmax-pool"

    def build_model(self):
        model = super().build_model()
        inputs = keras.Input((16, 16, 3))
        pooled = keras.layers.Lambda(lambda x: tf.nn.max_pool_with_argmax(x, 2, 2, "SAME")[0])(inputs)
        resized = keras.layers.UpSampling2D()(pooled)
        wrapped = keras.Model(inputs, model(resized))
        wrapped.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return wrapped


def test_an_op_the_converter_lacks_is_refused_by_name_writing_nothing(tmp_path):
    settings = {"workdir": tmp_path / "run", "export_dir": tmp_path / "saved_models", "verbose": 0,
                "train_examples": 32, "eval_examples": 16}
    kerasapps.run(ArgmaxPoolTask, plugins=PLUGINS, samples=0, **settings)
    (tmp_path / "saved_models" / "fake-argmax-pool").rename(tmp_path / "savedmodel")
    with pytest.raises(UsageError) as refused:
        kerasapps.export(ArgmaxPoolTask, plugins=PLUGINS, format="litert", **settings)
    assert str(refused.value) == ("the litert converter cannot convert it: op(s) MaxPoolWithArgmax not supported")
    assert "\n" not in str(refused.value)
    assert list((tmp_path / "saved_models").iterdir()) == []


def test_mistakes_are_one_error_line_exit_2_writing_nothing(trained, tmp_path):
    root, _ = trained
    export_dir = tmp_path / "saved_models"
    common = ["--workdir", root / "run", "--export-dir", export_dir]
    for args, message in [
        (["--format", "tflite"], "'tflite' is not one of 'savedmodel', 'litert', 'onnx'"),
        (["--format", "onnx", "--quantize", "int8"], "--quantize int8 is for --format litert"),
        (["--quantize", "float16"], "--quantize float16 is for --format litert"),
        (["--format", "litert", "--representative-examples", "0"], "0 is not in the range x>=1"),
    ]:
        result = cli(*FAKE, "export", "fake", *common, *args, env=FAKE_ENV, check=2)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr
    assert not export_dir.exists()
    with pytest.raises(UsageError, match="format: expected one of savedmodel, litert, onnx, got 'tflite'"):
        kerasapps.export("fake", plugins=PLUGINS, workdir=root / "run", export_dir=export_dir, format="tflite")


def test_a_task_without_a_tensor_core_is_refused_naming_why(tmp_path):
    """fake-text's model takes bag-of-words vectors, not images: the default hook refuses it."""
    run = ["--workdir", tmp_path / "run", "--export-dir", tmp_path / "saved_models"]
    cli(*FAKE, "train", "fake-text", *run, env=FAKE_ENV, check=0)
    result = cli(*FAKE, "export", "fake-text", *run, "--format", "onnx", env=FAKE_ENV, check=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: task 'fake-text' cannot export onnx: its model's input 'keras_tensor' is float32 "
                      "[None, 64], not float images [N, H, W, C] of a fixed size; its SavedModel export "
                      "(--format savedmodel) serves it"], result.stderr
    assert not (tmp_path / "saved_models").exists()


def test_a_format_whose_packages_are_missing_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(UsageError, match=r"--format onnx needs tf2onnx, not installed: pip install 'kerasapps\[formats\]'"):
        formats.check_format("onnx")
    formats.check_format("litert", "int8")  # ai-edge-litert is there
