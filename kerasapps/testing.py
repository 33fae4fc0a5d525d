"""A contract check for task plugins, in a few lines of a plugin's own tests.

:func:`check_task` does what a user does, each step in its own process through the
real ``kerasapps`` command line: a tiny ``train``, then ``evaluate`` and ``export``
(which rebuild the model from the workdir alone, as they do for users), then the
SavedModel's ``serving_default`` in a fresh Python process that imports only
TensorFlow, then ``kerasapps predict`` on the same inputs. Every step must succeed;
the returned :class:`ContractResult` holds what each gave, for the plugin's own
assertions (metric ranges, output values).

Example (a plugin's test file)::

    from kerasapps.testing import check_export, check_task, write_scene_images

    def test_denoising_contract(tmp_path):
        images = write_scene_images(tmp_path / "inputs", count=2)
        result = check_task("denoising", tmp_path, inputs=images,
                            run_args=["--epochs", "1", "--set", "train_examples=64"])
        assert result.metrics["psnr"] > result.metrics["noisy_psnr"]
        assert result.serving["png_bytes"]["shape"][0] == 2

    def test_exported_model_serves(trained_export):   # a SavedModel another fixture exported
        served = check_export(trained_export, ["a red circle"])
        assert served.predictions[0]["caption"]
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

SERVING_PROBE = r"""
import hashlib, json, sys
import numpy as np
import tensorflow as tf

export_dir, inputs, calls = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
signature = tf.saved_model.load(export_dir).signatures["serving_default"]
specs = signature.structured_input_signature[1]


def readable(value):
    if isinstance(value, np.ndarray):  # a row of a string matrix (top-k labels, say)
        return [readable(v) for v in value]
    if isinstance(value, bytes):
        if value[:8] == b"\x89PNG\r\n\x1a\n" or value[:3] == b"\xff\xd8\xff":
            pixels = tf.io.decode_image(value).numpy()
            image = {"image_shape": list(pixels.shape), "sha256": hashlib.sha256(value).hexdigest()}
            if pixels.size <= 16384:  # small images whole, for exact checks
                image["pixels"] = pixels.tolist()
            return image
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


results = []
for extra in calls:
    feed = {}
    for name, spec in specs.items():
        if name in extra:
            feed[name] = tf.constant(extra[name], spec.dtype)
        elif spec.dtype == tf.string:
            feed[name] = tf.constant([open(i, "rb").read() for i in inputs] if name.endswith("_bytes") else inputs)
        else:  # another input (a seed, say): an empty batch, the signature's default
            feed[name] = tf.zeros([0], spec.dtype)
    outputs = signature(**feed)
    results.append({name: {"shape": value.shape.as_list(), "dtype": value.dtype.name,
                           "values": [readable(v) if value.dtype == tf.string else np.asarray(v).tolist()
                                      for v in value.numpy()]}
                    for name, value in outputs.items()})
print(json.dumps({"imports": sorted(m for m in sys.modules if m.startswith("kerasapps")), "calls": results}))
"""


class ContractError(AssertionError):
    """A step of the contract check failed; the message holds the command and its output."""


@dataclasses.dataclass
class ServingResult:
    """What :func:`check_export` gave.

    Attributes:
        serving: ``serving_default``'s outputs in the TensorFlow-only process (its first call):
            name -> ``{"shape", "dtype", "values"}``, one value per input row: numbers as
            (nested) lists, text as ``str``, PNG/JPEG bytes as ``{"image_shape", "sha256"}`` (and
            ``"pixels"`` when the image has at most 16384 values).
        serving_calls: the same for each call (one per ``calls`` entry).
        predictions: ``kerasapps predict --json``'s records, one per input.
        predict_output: ``kerasapps predict``'s standard output.
    """

    serving: dict
    serving_calls: list
    predictions: list
    predict_output: str


@dataclasses.dataclass
class ContractResult(ServingResult):
    """What each step of :func:`check_task` gave: :class:`ServingResult`'s fields, and

    Attributes:
        metrics: the held-out metrics ``kerasapps evaluate`` wrote (``metrics.json``'s "metrics").
        metrics_file: all of ``metrics.json`` (history, strategy, precision ...).
        export_path: the SavedModel version folder ``kerasapps export`` wrote.
        outputs: the standard output of "train", "evaluate" and "export".
    """

    metrics: dict = dataclasses.field(default_factory=dict)
    metrics_file: dict = dataclasses.field(default_factory=dict)
    export_path: pathlib.Path | None = None
    outputs: dict = dataclasses.field(default_factory=dict)


def _run(step, command, env, cwd, timeout) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise ContractError(f"{step} failed (exit {result.returncode}): {' '.join(map(str, command))}\n"
                            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def _environment(pythonpath, env) -> dict:
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), full_env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
    return full_env


def _kerasapps(plugins) -> list[str]:
    return [sys.executable, "-m", "kerasapps", *[a for p in plugins for a in ("-p", p)]]


def check_export(export_path, inputs, *, out=None, calls=None, predict_args=(), plugins=(), pythonpath=(),
                 env=None, timeout: float = 600) -> ServingResult:
    """Serve an exported SavedModel as users do; raise :class:`ContractError` if it fails.

    ``serving_default`` runs in a fresh Python process that imports only TensorFlow (and must
    not import kerasapps), once per entry of ``calls`` (default one call; each entry maps a
    further input, a seed say, to its values), and must give one output row per input; then
    ``kerasapps predict --json`` (with ``predict_args``) must give one record per input.

    Args:
        export_path: a SavedModel version folder (``saved_models/TASK/1``).
        inputs: image file paths for a ``*_bytes`` input, strings for a text input.
        out: the folder ``predict`` writes image outputs to (default: ``predictions`` beside the export).
    """
    export_path = pathlib.Path(export_path)
    if not (export_path / "saved_model.pb").is_file():
        raise ContractError(f"no SavedModel at {export_path}")
    full_env = _environment(pythonpath, env)
    inputs = [str(i) for i in inputs]
    probe = _run("serving_default", [sys.executable, "-c", SERVING_PROBE, str(export_path), json.dumps(inputs),
                                     json.dumps(calls or [{}])], full_env, None, timeout)
    served = json.loads(probe.stdout.strip().splitlines()[-1])
    if served["imports"]:
        raise ContractError(f"serving the SavedModel imported {', '.join(served['imports'])}: "
                            "it must need only tensorflow")
    for outputs in served["calls"]:
        short = {name: o["shape"] for name, o in outputs.items() if not o["shape"] or o["shape"][0] != len(inputs)}
        if short:
            raise ContractError(f"serving_default outputs must have one row per input ({len(inputs)}): {short}")
    out = pathlib.Path(out) if out is not None else export_path.parent.parent / "predictions"
    predicted = _run("predict", [*_kerasapps(plugins), "predict", str(export_path), *inputs, "--json",
                                 "--out", str(out), *map(str, predict_args)], full_env, None, timeout)
    predictions = [json.loads(line) for line in predicted.stdout.splitlines() if line.startswith("{")]
    if [p["input"] for p in predictions] != inputs:
        raise ContractError(f"predict gave {len(predictions)} records for {len(inputs)} inputs:\n{predicted.stdout}")
    return ServingResult(served["calls"][0], served["calls"], predictions, predicted.stdout)


def check_task(task: str, directory, *, inputs, run_args=(), calls=None, predict_args=(), plugins=(),
               pythonpath=(), env=None, timeout: float = 900) -> ContractResult:
    """Train ``task`` tiny, evaluate, export, serve and predict; raise :class:`ContractError` if a step fails.

    Args:
        task: the task's name.
        directory: a scratch folder (``tmp_path``): the workdir, export and predictions go here.
        inputs: what ``serving_default`` and ``predict`` get: image file paths for a ``*_bytes``
            input, strings for a text input (see :func:`write_scene_images`).
        run_args: options for ``kerasapps train`` that make the run tiny (``--epochs 1``,
            ``--set train_examples=64`` ...); ``evaluate`` and ``export`` reuse the workdir's config.
        calls, predict_args: as for :func:`check_export`.
        plugins: plugin names to load with ``-p`` (a module not installed as a distribution).
        pythonpath: folders to put on ``PYTHONPATH`` (where such a module lives).
        env: extra environment variables.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    workdir, export_dir = directory / "run", directory / "saved_models"
    full_env = _environment(pythonpath, env)
    kerasapps = _kerasapps(plugins)
    where = ["--workdir", str(workdir), "--export-dir", str(export_dir)]
    outputs = {}
    outputs["train"] = _run("train", [*kerasapps, "train", task, *map(str, run_args), *where], full_env, directory,
                            timeout).stdout
    outputs["evaluate"] = _run("evaluate", [*kerasapps, "evaluate", task, *where], full_env, directory,
                               timeout).stdout
    metrics_file = json.loads((workdir / "metrics.json").read_text())
    metrics = metrics_file.get("metrics") or {}
    if not metrics:
        raise ContractError(f"evaluate wrote no metrics to {workdir / 'metrics.json'}")
    not_finite = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if not_finite:
        raise ContractError(f"evaluate gave non-finite metrics: {', '.join(not_finite)}")
    outputs["export"] = _run("export", [*kerasapps, "export", task, *where], full_env, directory, timeout).stdout
    export_path = pathlib.Path(outputs["export"].strip().splitlines()[-1].removeprefix("exported: "))
    if not export_path.is_absolute():
        export_path = directory / export_path
    served = check_export(export_path, inputs, out=directory / "predictions", calls=calls, predict_args=predict_args,
                          plugins=plugins, pythonpath=pythonpath, env=env, timeout=timeout)
    return ContractResult(**dataclasses.asdict(served), metrics=metrics, metrics_file=metrics_file,
                          export_path=export_path, outputs=outputs)


def write_scene_images(directory, count: int = 2, size: int = 48, seed: int = 123) -> list[pathlib.Path]:
    """Held-out ``shapes`` scenes as image files for serving and predict: PNG and JPEG in turn
    (``scene0.png``, ``scene1.jpg`` ...), of any ``size`` (a SavedModel must resize)."""
    import tensorflow as tf

    from kerasapps.data import shapes

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = shapes.generate_scene(i, "test", seed=seed, image_size=size)["image"]
        png = i % 2 == 0
        path = directory / f"scene{i}.{'png' if png else 'jpg'}"
        path.write_bytes((tf.io.encode_png(image) if png else tf.io.encode_jpeg(image, quality=95)).numpy())
        paths.append(path)
    return paths


def write_text_folder(directory, classes: dict | None = None, *, per_class: int = 40, splits=("train", "test"),
                      seed: int = 0) -> pathlib.Path:
    """A labelled text folder in :func:`kerasapps.api.read_text_folder`'s layout, for a text
    task's tests: ``directory/<split>/<class>.txt``, one sentence per line.

    ``classes`` maps each class name to its sentences (split round-robin over ``splits``);
    by default three classes whose sentences differ only in their colour word, so a model
    that reads the words can tell them apart::

        root = write_text_folder(tmp_path / "text")
        # root/train/red.txt: "a small red square on the left", ...
    """
    import random

    directory = pathlib.Path(directory)
    if classes is None:
        rng = random.Random(seed)
        classes = {colour: [f"a {rng.choice(['small', 'large', 'tiny'])} {colour} "
                            f"{rng.choice(['square', 'circle', 'triangle'])} on the {rng.choice(['left', 'right'])}"
                            for _ in range(per_class)] for colour in ("red", "green", "blue")}
    for split_index, split in enumerate(splits):
        folder = directory / split
        folder.mkdir(parents=True, exist_ok=True)
        for name, sentences in classes.items():
            lines = sentences[split_index::len(splits)]
            (folder / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines), "utf-8")
    return directory


__all__ = ["ContractError", "ContractResult", "ServingResult", "check_export", "check_task", "reset_keras_precision",
           "run_cli", "write_scene_images", "write_text_folder"]


def run_cli(*args, cwd=None, env=None, timeout: float = 600, check: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m kerasapps ARGS`` in a fresh process, as a user would, and return the
    ``CompletedProcess`` (text; TensorFlow's C++ log lines silenced). With ``check``, an exit
    code other than ``check`` raises AssertionError showing both streams.

    Example (a plugin's test)::

        result = run_cli("train", "denoising", "--epochs", "1", "--workdir", tmp_path / "run", check=0)
        assert "val_psnr" in result.stdout
    """
    result = subprocess.run([*_kerasapps(()), *map(str, args)], cwd=cwd, env=_environment((), env),
                            capture_output=True, text=True, timeout=timeout)
    if check is not None and result.returncode != check:
        raise AssertionError(f"exit {result.returncode} (expected {check}) for {list(map(str, args))}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def reset_keras_precision() -> None:
    """Put Keras's global dtype policy back to float32, if Keras is loaded.

    An in-process run keeps the precision it picked (``mixed_bfloat16`` on CPUs with bfloat16 instructions), as
    a script would; call this after each test (an autouse fixture in the plugin's
    ``conftest.py``) so the next test starts from float32::

        @pytest.fixture(autouse=True)
        def _float32_after_each_test():
            yield
            reset_keras_precision()
    """
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")
