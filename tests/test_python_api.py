"""The Python API (kerasapps.run/train/evaluate/export/load): the command line is a thin layer over
it, so both give the same runs, the same exports and the same one-line mistakes."""

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import kerasapps
from tests.conftest import FAKE, FAKE_ENV, ROOT, cli

sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with plugins=[...]
PLUGINS = ["kerasapps_fake"]
SETTINGS = {"units": 4, "train_examples": 96, "eval_examples": 32, "seed": 3}


def test_import_and_the_api_names_load_no_tensorflow():
    code = ("import sys, kerasapps\n"
            "names = [kerasapps.run, kerasapps.train, kerasapps.evaluate, kerasapps.export, kerasapps.load]\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    result = kerasapps.run("fake", plugins=PLUGINS, workdir=root / "run", export_dir=root / "saved_models",
                           samples=2, verbose=0, **SETTINGS)
    return root, result


def test_api_and_cli_give_the_same_run_for_the_same_seed(api_run, tmp_path):
    root, result = api_run
    assert result.task == "fake" and result.scored_split == "test" and len(result.history) == 1
    assert result.export_path == root / "saved_models" / "fake" / "1" and (result.export_path / "saved_model.pb").exists()
    assert result.model is not None and result.model.count_params() > 0
    assert json.loads(result.metrics_file.read_text())["metrics"] == result.metrics
    options = [f"--set={key}={value}" for key, value in SETTINGS.items() if key != "seed"]
    cli(*FAKE, "run", "fake", "--seed", "3", *options, "--workdir", tmp_path / "run", "--export-dir",
        tmp_path / "saved_models", env=FAKE_ENV, check=0)
    from_cli = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # Same data, same initial weights, same steps: the same figures, to float32 precision.
    assert from_cli["metrics"]["examples"] == result.metrics["examples"]
    for name in ("loss", "accuracy"):
        assert from_cli["metrics"][name] == pytest.approx(result.metrics[name], abs=1e-5), name
    assert from_cli["config"]["params"] == json.loads(json.dumps(result.config["params"]))  # tuples as JSON lists
    # The two exports serve the same answers.
    from kerasapps.testing import write_scene_images

    images = write_scene_images(tmp_path / "inputs", count=3)
    ours = kerasapps.load(result.export_path).predict(images)
    theirs = kerasapps.load(tmp_path / "saved_models" / "fake" / "1").predict(images)
    assert [p["colour"] for p in ours] == [p["colour"] for p in theirs]
    np.testing.assert_allclose(np.stack([p["scores"] for p in ours]), np.stack([p["scores"] for p in theirs]),
                               atol=1e-5)


def test_evaluate_and_export_read_the_workdir_as_the_commands_do(api_run, capsys):
    root, result = api_run
    scored = kerasapps.evaluate("fake", plugins=PLUGINS, workdir=root / "run", verbose=0)
    assert scored.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    exported = kerasapps.export("fake", plugins=PLUGINS, workdir=root / "run", export_dir=root / "saved_models",
                                verbose=2)
    assert exported.export_path == root / "saved_models" / "fake" / "2"
    assert f"exported: {exported.export_path}" in capsys.readouterr().out  # verbose=0 above printed nothing


def test_predictor_takes_paths_bytes_pil_images_and_arrays(api_run, tmp_path):
    from PIL import Image

    from kerasapps.testing import write_scene_images

    _, result = api_run
    predictor = kerasapps.load(result.export_path)
    path = write_scene_images(tmp_path, count=1)[0]
    data = path.read_bytes()
    pixels = np.asarray(Image.open(path).convert("RGB"))
    answers = [predictor.predict(item)[0] for item in (path, str(path), data, Image.open(path), pixels)]
    assert len({a["colour"] for a in answers}) == 1
    for answer in answers:
        np.testing.assert_allclose(answer["scores"], answers[0]["scores"], atol=1e-6)
        assert isinstance(answer["colour"], str) and answer["scores"].dtype == np.float32
        assert isinstance(answer["preview_bytes"], Image.Image)  # an image output arrives as a picture
    page = predictor.predict([path, pixels])._repr_html_()
    assert page.count("<table>") == 2 and "data:image/png;base64," in page and answers[0]["colour"] in page


@pytest.mark.parametrize("item,message", [
    (b"not an image", r"input 0 \(bytes\) is not a PNG, JPEG, GIF, BMP or WebP image"),
    (np.zeros((4, 4, 2), np.uint8), r"input 0: an image array must be \[height, width, 1, 3 or 4\]"),
    (np.full((4, 4, 3), 300.0), r"input 0: an image array must be uint8, or floats in 0..255"),
    (3.5, r"input 0: expected a file path, bytes, a PIL image or a NumPy array for an image, not float"),
    ("nowhere.png", r"cannot read nowhere.png"),
])
def test_predictor_mistakes_are_one_usage_error(api_run, item, message):
    with pytest.raises(kerasapps.UsageError, match=message):
        kerasapps.load(api_run[1].export_path).predict(item)


def test_predictor_keeps_the_pixel_limit(api_run, monkeypatch):
    monkeypatch.setenv("KERASAPPS_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(kerasapps.UsageError, match=r"input 0 \(array\): 20x20 pixels is over the limit of 100"):
        kerasapps.load(api_run[1].export_path).predict(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(kerasapps.UsageError, match="is not a SavedModel folder"):
        kerasapps.load(api_run[0])


# The command line's mistakes (tests/test_registry.py's table): the API raises UsageError with the same line.
MISTAKES = [
    ("nosuchtask", {}, []),
    ("fake", {"nosuchkey": 1}, ["--set", "nosuchkey=1"]),
    ("fake", {"epochs": "many"}, ["--epochs", "many"]),
    ("fake", {"units": "many"}, ["--set", "units=many"]),
    ("fake", {"dataset": "folder:/no/such/dir"}, ["--dataset", "folder:/no/such/dir"]),
    ("fake", {"dataset": "nosuchdata"}, ["--dataset", "nosuchdata"]),
    ("fake", {"config": "/no/such.yaml"}, ["--config", "/no/such.yaml"]),
    ("fake", {"strategy": "bogus"}, ["--strategy", "bogus"]),
    ("fake", {"batch_size": 0}, ["--batch-size", "0"]),
    ("fake", {"recipe": "nosuch"}, ["--recipe", "nosuch"]),
]


@pytest.mark.parametrize("task,settings,args", MISTAKES, ids=[" ".join(m[2]) or m[0] for m in MISTAKES])
def test_every_mistake_is_the_command_lines_line(task, settings, args, tmp_path):
    with pytest.raises(kerasapps.UsageError) as raised:
        kerasapps.run(task, plugins=PLUGINS, workdir=tmp_path / "run", **settings)
    result = cli(*FAKE, "run", task, *args, "--workdir", tmp_path / "run", env=FAKE_ENV, check=2)
    line = result.stderr.strip().splitlines()[-1]
    message = str(raised.value).splitlines()[0]
    # The command line adds where to read more on option errors: "(see `kerasapps run --help`)".
    assert line.removesuffix(" (see `kerasapps run --help`)") == f"error: {message}"
    assert not (tmp_path / "run").exists()


def test_a_task_class_runs_without_being_installed_and_an_interrupted_run_resumes(tmp_path):
    import keras
    from kerasapps_fake import FakeTask

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0 and not (tmp_path / "interrupted").exists():
                (tmp_path / "interrupted").touch()
                raise KeyboardInterrupt  # what a notebook's "interrupt the kernel" raises

    class Prototype(FakeTask):
        """The fake task, not installed anywhere: a notebook's class."""

        name = "prototype"

        def training_callbacks(self, model, datasets, workdir):
            return [Interrupt()]

    settings = dict(workdir=tmp_path / "run", export_dir=tmp_path / "saved_models", epochs=2, verbose=0, **SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        kerasapps.run(Prototype, **settings)
    out = io.StringIO()
    sys.stdout, saved = out, sys.stdout
    try:
        result = kerasapps.run(Prototype, **{**settings, "verbose": 2})  # the lock was given back; it resumes
    finally:
        sys.stdout = saved
    assert "resuming prototype" in out.getvalue() and "epoch 2/2" in out.getvalue()
    assert [h["epoch"] for h in result.history] == [1, 2] and result.export_path.name == "1"
    with pytest.raises(kerasapps.UsageError, match="is not a task class with a name"):
        kerasapps.run(object)


# -- the command line's whole hostile-input table, from Python ------------------------------------
# Each case of tests/test_hostile_inputs.py's table, made from Python (settings typed as a Python
# user types them): kerasapps.UsageError with the line the command line prints. Two are worded for
# Python on purpose (an option is a keyword there); the `kerasapps` group's own options have no
# Python form.
from tests.test_hostile_inputs import CASES, invoke, write  # noqa: E402

OPTION_NAMES = {"--seed": "seed", "--epochs": "epochs", "--epoch": "epoch", "--batch-size": "batch_size",
                "--workdir": "workdir", "--export-dir": "export_dir", "--dataset": "dataset",
                "--strategy": "strategy", "--config": "config"}
PYTHON_WORDING = {"unknown option": "unknown config key 'epoch'; did you mean 'epochs'?",
                  "config is a folder": "cannot read config file d: Is a directory",
                  # batch_size is a run option in Python (the command line's --batch-size), not a --set field
                  "inherited minimum": "Invalid value for '--batch-size': 0 is not in the range x>=1."}
NO_PYTHON_FORM = {"unknown group option", "group option without its value"}


def typed(text: str):
    """The Python value a user writes for a command line's text: 1, 0.5, (8, 0), 'relu'."""
    if "," in text:
        return tuple(typed(part) for part in text.split(","))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def python_call(args):
    """(function, task, settings) of a command line: `run fake --set units=0` -> (kerasapps.run, "fake", {"units": 0})."""
    command, task, *rest = args
    settings, pairs = {}, iter(rest)
    for flag in pairs:
        value = next(pairs)
        if flag == "--set":
            key, text = value.split("=", 1)
            settings[key] = typed(text)
        else:
            settings[OPTION_NAMES[flag]] = typed(value) if flag in ("--seed", "--epochs", "--epoch", "--batch-size") \
                else value
    return getattr(kerasapps, command), task, settings


API_CASES = [case for case in CASES if case[0] not in NO_PYTHON_FORM]


@pytest.mark.parametrize("name,files,args", [c[:3] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_the_hostile_input_tables_mistakes_raise_the_command_lines_line(name, files, args, tmp_path, monkeypatch):
    for path, content in files.items():
        write(tmp_path / path, content)
    line = [row for row in invoke(args, tmp_path).stderr.splitlines() if row.startswith("error:")][0]
    line = re.sub(r" \(see `\S+ run --help`\)$", "", line)  # where to read more, on the command line only
    function, task, settings = python_call(args)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kerasapps.UsageError) as raised:
        function(task, plugins=PLUGINS, verbose=0, **settings)
    message = str(raised.value).splitlines()[0]
    # Free memory, quoted by the "memory" case, moves between the two calls.
    line, message = (re.sub(r"[\d.]+ GiB", "N GiB", text) for text in (line, message))
    if name in PYTHON_WORDING:
        assert message.startswith(PYTHON_WORDING[name]), message
    else:
        assert f"error: {message}" == line
    assert not list(tmp_path.glob("saved_models/**/saved_model.pb"))
