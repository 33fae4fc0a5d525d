"""A hostile user's inputs and faults, through the CLI: each is one `error:` line, exit 2, no traceback,
and nothing already done is lost.

Most cases run in-process with click's CliRunner and fail before TensorFlow does real work;
the ones that need a real process (locks, kill -9) run the CLI in a subprocess.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import cli

from kerasapps.cli import cli as kerasapps_cli

# One tiny training configuration (seconds on 2 cores).
SMALL = ["--epochs", "1", "--batch-size", "16", "--set", "train_examples=32", "--set", "eval_examples=16",
         "--set", "image_size=16"]


def invoke(args, cwd):
    """Run the CLI in-process in ``cwd``; returns click's Result."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(kerasapps_cli, [str(a) for a in args], catch_exceptions=True)
    finally:
        os.chdir(old)


def assert_one_error(result, fragment, code=2):
    """Exit ``code``, exactly one `error:` line holding ``fragment``, no traceback."""
    stderr = result.stderr
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


def write(path, data: bytes | str):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# (case id, files to write {name: content}, arguments, fragment of the one error line)
CASES = [
    ("negative image size", {}, ["run", "classification", "--set", "image_size=-5"],
     "image_size: expected a value >= 16 and <= 8192; got -5"),
    ("huge image size", {}, ["run", "classification", "--set", "image_size=100000"], "image_size: expected"),
    ("zero width", {}, ["run", "segmentation", "--set", "width=0"], "width: expected a value >= 1"),
    ("zero train examples", {}, ["run", "classification", "--set", "train_examples=0"],
     "train_examples: expected a value >= 1; got 0"),
    ("zero epochs in a file", {"c.yaml": "epochs: 0\n"}, ["run", "classification", "--config", "c.yaml"],
     "epochs: expected a value >= 1"),
    ("inherited minimum", {}, ["run", "captioning", "--set", "batch_size=0"], "batch_size: expected a value >= 1"),
    ("zero learning rate", {}, ["run", "translation", "--set", "learning_rate=0"], "learning_rate: expected a value > 0"),
    ("dropout of one", {}, ["run", "pix2pix", "--set", "dropout=1"], "dropout: expected a value >= 0 and < 1"),
    ("tuple item", {}, ["run", "classification", "--set", "filters=8,0"], "filters: expected a value >= 1"),
    ("channels choice", {}, ["run", "classification", "--set", "channels=2"], "channels: expected one of 1, 3"),
    ("text-to-image noise", {}, ["run", "text-to-image", "--set", "z_dim=0"], "z_dim: expected a value >= 1"),
    ("memory", {}, ["run", "classification", "--set", "train_examples=100000000"],
     "GiB of memory, more than the"),
    ("negative seed", {}, ["run", "classification", "--seed", "-1"], "seed: expected a value >= 0"),
    ("binary config", {"bin.yaml": b"\xff\xfe\x00\x01binary"}, ["run", "classification", "--config", "bin.yaml"],
     "is not UTF-8 text"),
    ("NUL bytes in config", {"nul.yaml": b"epochs: 1\x00\x00"}, ["run", "classification", "--config", "nul.yaml"],
     "holds binary data"),
    ("malformed JSON", {"c.json": "{epochs: 1"}, ["run", "classification", "--config", "c.json"], "not valid JSON"),
    ("malformed YAML", {"c.yaml": "epochs: [1\n"}, ["run", "classification", "--config", "c.yaml"], "not valid YAML"),
    ("config not a mapping", {"c.yaml": "- 1\n- 2\n"}, ["run", "classification", "--config", "c.yaml"],
     "must hold a mapping"),
    ("dataset as int", {"c.yaml": "dataset: 5\n"}, ["run", "classification", "--config", "c.yaml"],
     "dataset: expected a string"),
    ("path as int", {"c.yaml": "workdir: 5\n"}, ["run", "classification", "--config", "c.yaml"],
     "workdir: expected a string"),
    ("seed not a number", {"c.yaml": "seed: abc\n"}, ["run", "classification", "--config", "c.yaml"],
     "seed: expected int, got 'abc'"),
    ("strategy not a choice", {"c.yaml": "strategy: fastest\n"}, ["run", "classification", "--config", "c.yaml"],
     "strategy: expected one of auto"),
    ("params not a mapping", {"c.yaml": "params: 3\n"}, ["run", "classification", "--config", "c.yaml"],
     "'params' must be a mapping"),
    ("non-string key", {"c.yaml": "1: 2\n"}, ["run", "classification", "--config", "c.yaml"],
     "unknown config key 1 "),
    ("config is a folder", {"d/x": ""}, ["run", "classification", "--config", "d"],
     "Invalid value for '--config': File 'd' is a directory"),
    ("bad option value", {}, ["run", "classification", "--strategy", "bogus"], "Invalid value for '--strategy'"),
    ("unknown option", {}, ["run", "classification", "--epoch", "3"], "No such option '--epoch'. Did you mean '--epochs'?"),
    ("saved config malformed", {"runs/classification/config.json": "{not json"},
     ["evaluate", "classification"], "config.json is not valid JSON"),
    ("saved config wrong type", {"runs/classification/config.json": '{"task": "classification", "seed": "abc"}'},
     ["export", "classification"], "seed: expected int"),
    ("saved config a list", {"runs/classification/config.json": "[1, 2]"}, ["evaluate", "classification"],
     "must hold a mapping"),
    ("workdir is a file", {"wd": "x"}, ["train", "classification", "--workdir", "wd", *SMALL],
     "workdir wd is not writable: it is a file"),
    ("workdir under a file", {"wd": "x"}, ["train", "classification", "--workdir", "wd/sub", *SMALL],
     "workdir wd/sub is not writable: Not a directory"),
    ("export dir under a file", {"ex": "x"}, ["run", "classification", "--export-dir", "ex", *SMALL],
     "export directory ex/classification is not writable: Not a directory"),
    ("unknown task", {}, ["run", "nosuchtask"], "unknown task 'nosuchtask'"),
    ("empty folder dataset", {"empty/.keep": ""}, ["train", "classification", "--dataset", "folder:empty", *SMALL],
     "empty"),
]


@pytest.mark.parametrize("files,args,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(tmp_path, files, args, fragment):
    for name, content in files.items():
        write(tmp_path / name, content)
    result = invoke(args, tmp_path)
    assert_one_error(result, fragment)
    # Nothing was trained, generated or exported.
    assert not (tmp_path / "saved_models").exists() or not any((tmp_path / "saved_models").rglob("saved_model.pb"))
