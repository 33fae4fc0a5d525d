"""Named recipes (``kerasapps run TASK --recipe NAME``): the config files a plugin ships in the
``recipes/`` folder of the package that defines its task class.

Every first-party recipe is a valid config of its task and says how to run it; ``--recipe``
reads it as ``--config`` would, under ``--config`` and ``--set``; an unknown name is one
``error:`` line; ``info`` lists the recipes; a third-party plugin ships recipes the same way.
"""

import json
import pathlib
import sys

import pytest
from click.testing import CliRunner

from tests.conftest import FAKE_ENV, ROOT

from kerasapps.cli import cli as kerasapps_cli

RECIPE_FILES = sorted(ROOT.glob("plugins/*/kerasapps_*/recipes/*.yaml"))


def invoke(*args):
    return CliRunner().invoke(kerasapps_cli, [str(a) for a in args], catch_exceptions=True)


def one_error(result) -> str:
    """The single `error:` line of a refused command (exit 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_the_headline_figures_have_recipes():
    names = {f"{path.parents[1].name}/{path.stem}" for path in RECIPE_FILES}
    assert {"kerasapps_segmentation/camvid", "kerasapps_translation/multi30k", "kerasapps_classification/mnist",
            "kerasapps_captioning/flickr8k", "kerasapps_captioning/flickr8k-matching",
            "kerasapps_captioning/flickr8k-self-critical"} <= names


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.name)
def test_every_first_party_recipe_is_a_valid_config_of_its_task(path):
    from kerasapps.config import load_config_file
    from kerasapps.recipes import find_recipes
    from kerasapps.registry import discover
    from kerasapps.training.runner import RunOptions, resolve_config

    registry = discover()
    package = path.parents[1].name
    owners = []
    for task, (spec, _info) in sorted(registry.tasks.items()):
        if spec.factory.split(":")[0].split(".")[0] == package:
            recipe = find_recipes(registry.load_task(task), task).get(path.stem)
            if recipe is not None:
                owners.append(task)
                assert pathlib.Path(str(recipe.resource)).resolve() == path.resolve()
    assert owners, f"{path.name} belongs to no task of {package} (a task: key naming none of them?)"
    settings = load_config_file(path)
    for task in owners:
        # The settings a user must give: the run a frozen encoder comes from, the run a fine-tuning starts from.
        overrides = {"encoder_weights": "runs/flickr8k-encoder"} if settings.get("encoder") in ("tagging",
                                                                                             "matching") else {}
        if settings.get("objective") == "self_critical":
            overrides["initial_weights"] = "runs/flickr8k"
        _, resolved, _ = resolve_config(registry, RunOptions(task=task, recipe=path.stem, overrides=overrides))
        for key, value in settings.items():
            if key != "task":
                got = resolved["params"][key]
                assert (list(got) if isinstance(got, tuple) else got) == value, (key, got, value)
    # Its header: a one-line description, the command that runs it, where its figures are (or that it is not run).
    text = path.read_text()
    assert text.startswith("# ") and len(text.splitlines()[0]) <= 120
    assert any(f"kerasapps run {task} --recipe {path.stem}" in text for task in owners)
    assert "docs/" in text or "not run" in text


def test_print_config_shows_the_recipe_values():
    printed = invoke("run", "classification", "--recipe", "mnist", "--print-config")
    assert printed.exit_code == 0, printed.output
    params = json.loads(printed.stdout)["params"]
    assert params["epochs"] == 12 and params["filters"] == [32, 64]  # the recipe's (the task's default epochs: 8)


def test_config_file_and_options_override_the_recipe(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("epochs: 3\ndropout: 0.3\n")
    printed = invoke("run", "classification", "--recipe", "mnist", "--config", config, "--set", "dropout=0.4",
                     "--batch-size", "32", "--print-config")
    assert printed.exit_code == 0, printed.output
    params = json.loads(printed.stdout)["params"]
    assert (params["epochs"], params["dropout"], params["batch_size"], params["filters"]) == (3, 0.4, 32, [32, 64])


def test_an_unknown_recipe_is_one_error_line_naming_the_task_recipes():
    error = one_error(invoke("run", "translation", "--recipe", "multi30", "--print-config"))
    assert error == "error: task 'translation' has no recipe 'multi30'; its recipes: multi30k, multi30k-accelerator"
    error = one_error(invoke("train", "segmentation", "--recipe", "flickr8k"))  # another task's recipe
    assert "its recipes: camvid" in error


def test_info_lists_the_recipes_with_their_first_comment_line():
    shown = invoke("info", "tagging")
    assert shown.exit_code == 0, shown.output
    section = shown.stdout.split("recipes (--recipe NAME):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in section] == ["flickr8k-tagging", "flickr8k-tagging-accelerator"]
    assert "Visual concepts on Flickr8k: a small CNN tags each photo" in section[0]
    described = json.loads(invoke("info", "classification", "--json").stdout)["recipes"]
    assert described == [{"name": "mnist", "description": "LeNet-5 on real MNIST PNGs through folder:, 12 epochs "
                                                          "(test accuracy 0.9914)."}]


THIRD_PARTY = '''
from kerasapps.api import TaskSpec, hookimpl
from kerasapps_fake import FakeTask


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("demo", "recipe_demo:DemoTask", "a fake task with recipes"),
            TaskSpec("other", "recipe_demo:OtherTask", "its sibling")]


class DemoTask(FakeTask):
    """The fake task, shipped with a recipe."""

    name = "demo"


class OtherTask(FakeTask):
    """The fake task again: recipes with task: demo are not its."""

    name = "other"
'''


@pytest.fixture
def recipe_demo(tmp_path, monkeypatch):
    """The folder of a third-party plugin package, ``recipe_demo``, importable (its recipes/ still empty)."""
    package = tmp_path / "site" / "recipe_demo"
    (package / "recipes").mkdir(parents=True)
    (package / "__init__.py").write_text(THIRD_PARTY)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(FAKE_ENV["PYTHONPATH"])
    monkeypatch.delitem(sys.modules, "recipe_demo", raising=False)  # another test's copy
    yield package
    sys.modules.pop("recipe_demo", None)


def test_a_third_party_plugin_ships_recipes_in_its_package(recipe_demo):
    package = recipe_demo
    (package / "recipes" / "wide.yaml").write_text("# Wider hidden layer.\nunits: 32\nlearning_rate: 0.05\n")
    (package / "recipes" / "demo-only.json").write_text(json.dumps({"task": "demo", "epochs": 2}))
    (package / "recipes" / "notes.txt").write_text("not a recipe")

    printed = invoke("-p", "recipe_demo", "run", "demo", "--recipe", "wide", "--print-config")
    assert printed.exit_code == 0, printed.output
    params = json.loads(printed.stdout)["params"]
    assert (params["units"], params["learning_rate"]) == (32, 0.05)
    demo = json.loads(invoke("-p", "recipe_demo", "info", "demo", "--json").stdout)["recipes"]
    assert demo == [{"name": "demo-only", "description": ""}, {"name": "wide", "description": "Wider hidden layer."}]
    other = invoke("-p", "recipe_demo", "info", "other")
    assert "wide" in other.stdout and "demo-only" not in other.stdout
    assert "its recipes: wide" in one_error(invoke("-p", "recipe_demo", "run", "other", "--recipe", "demo-only"))


def test_a_task_in_a_top_level_module_ships_no_recipes(monkeypatch):
    monkeypatch.syspath_prepend(FAKE_ENV["PYTHONPATH"])
    assert one_error(invoke("-p", "kerasapps_fake", "run", "fake", "--recipe", "any")) == \
        "error: task 'fake' has no recipe 'any'; it ships no recipes"
    assert "recipes (--recipe" not in invoke("-p", "kerasapps_fake", "info", "fake").stdout


def test_a_malformed_recipe_file_is_one_error_line_naming_it(recipe_demo):
    (recipe_demo / "recipes" / "broken.yaml").write_text("units: [32\n")
    error = one_error(invoke("-p", "recipe_demo", "run", "demo", "--recipe", "broken"))
    assert "broken.yaml is not valid YAML" in error


def test_the_camvid_benchmark_runs_its_recipe_with_only_the_options_given(tmp_path):
    from argparse import Namespace

    from benchmarks.camvid_segnet import recipe_command

    classes = tmp_path / "class_dict.csv"
    plain = Namespace(epochs=None, image_size=None, batch_size=None, kernel_size=None, learning_rate=None,
                      lr_schedule=None, keep=None, data=str(tmp_path / "camvid"))
    command = recipe_command(plain, classes, tmp_path)
    assert command[command.index("--recipe") + 1] == "camvid" and "--epochs" not in command
    assert [command[i + 1] for i, word in enumerate(command) if word == "--set"] == [f"classes_file={classes}"]
    paper = Namespace(**{**vars(plain), "epochs": 40, "image_size": "360,480", "keep": "best"})
    command = recipe_command(paper, classes, tmp_path)
    assert command[command.index("--epochs") + 1] == "40"
    assert {"image_size=360,480", "restore_best_weights=True"} <= set(command)
    drives = Namespace(**{**vars(plain), "holdout_groups": "0006R0", "seed": 2, "set": ["colour_jitter=0.1"]})
    command = recipe_command(drives, classes, tmp_path)
    assert command[command.index("--seed") + 1] == "2"
    assert [command[i + 1] for i, word in enumerate(command) if word == "--set"][1:] == [
        "holdout_groups=0006R0", "colour_jitter=0.1"]
    final = Namespace(**{**vars(plain), "recipe": "camvid-trainval"})
    command = recipe_command(final, classes, tmp_path)
    assert command[command.index("--recipe") + 1] == "camvid-trainval" and "--epochs" not in command


def test_the_mnist_benchmark_runs_its_recipe_and_reports_the_epochs_it_ran(tmp_path, capsys):
    from PIL import Image

    from benchmarks.mnist_lenet import main

    rng = __import__("numpy").random.default_rng(0)
    for split, count in (("train", 12), ("test", 4)):
        for digit in "01":
            (tmp_path / split / digit).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (28, 28), dtype="uint8")).save(tmp_path / split / digit / f"{i}.png")
    main(["--data", str(tmp_path), "--epochs", "1"])
    out = capsys.readouterr().out
    assert "run classification --recipe mnist --dataset folder:" in out and out.rstrip().endswith("s")
    assert "MNIST LeNet-5 via folder:, 1 epochs: test accuracy" in out
