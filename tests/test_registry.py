"""Plugin discovery as users meet it: `kerasapps list`, broken and clashing plugins, -p no:NAME.

The installed plugin is a distribution made in a temporary folder whose entry point registers the
fake task of tests/plugins (``installed_fake``), so no first-party plugin is needed."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import FAKE, FAKE_ENV, ROOT, cli, make_distribution


CLASH = """
import kerasapps

@kerasapps.hookimpl
def kerasapps_register_tasks():
    return [kerasapps.TaskSpec("fake", "nowhere:Nothing", "a clashing task")]
"""

# An installed plugin (distribution faketasks 1.2, entry point fakedist): the fake task.
FAKE_DIST = """
from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("fake", "kerasapps_fake:FakeTask", "the fake task, installed")]
"""


def installed_fake(site) -> dict:
    """Install the fake task as a distribution under ``site``; returns the env that finds it."""
    make_distribution(site, "faketasks", "fakedist_plugin", FAKE_DIST, entry_name="fakedist")
    return {"PYTHONPATH": os.pathsep.join([str(site), FAKE_ENV["PYTHONPATH"]])}


def test_list_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from kerasapps.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'TF-ABSENT')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([installed_fake(tmp_path)["PYTHONPATH"], str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "fake" in out.split("tasks:")[1]
    assert out.strip().endswith("TF-ABSENT")


def test_list_json_names_distribution_and_version(tmp_path):
    data = json.loads(cli("list", "--json", env=installed_fake(tmp_path), check=0).stdout)
    task = {t["task"]: t for t in data["tasks"]}["fake"]
    assert task["distribution"] == "faketasks"
    assert task["version"] == "1.2"
    assert {d["dataset"] for d in data["datasets"]} >= {"shapes"}


def test_broken_plugin_is_reported_and_others_still_work(tmp_path):
    make_distribution(tmp_path, "brokenplug", "broken_plugin", "raise ImportError('needs libfoo')\n")
    result = cli(*FAKE, "list", "--json", env={"PYTHONPATH": os.pathsep.join([str(tmp_path), FAKE_ENV["PYTHONPATH"]])},
                 check=0)
    data = json.loads(result.stdout)
    assert "fake" in {t["task"] for t in data["tasks"]}
    (broken,) = data["broken_plugins"]
    assert broken["plugin"] == "broken_plugin" and broken["distribution"] == "brokenplug"
    assert "needs libfoo" in broken["error"]
    assert "broken_plugin" in result.stderr and "needs libfoo" in result.stderr  # the warning
    text = cli("list", env={"PYTHONPATH": str(tmp_path)}, check=0).stdout
    assert "broken plugins:" in text and "brokenplug" in text
    assert "broken_plugin" not in text.split("plugins:\n", 1)[1].split("broken plugins:")[0]  # listed once
    cli("list", "--check", env={"PYTHONPATH": str(tmp_path)}, check=1)  # CI can gate on it


LONG_NAMED = """
import kerasapps

@kerasapps.hookimpl
def kerasapps_register_tasks():
    return [kerasapps.TaskSpec("a-task-with-a-rather-long-name", "long_named_task:Task", "a long-named task")]
"""


def test_list_columns_align_from_the_widest_entry(tmp_path):
    make_distribution(tmp_path, "kerasapps-plugin-with-a-very-long-distribution-name", "long_named", LONG_NAMED)
    (tmp_path / "long_named_task.py").write_text("")  # found, never imported by plain `list`
    text = cli("list", env={"PYTHONPATH": str(tmp_path)}, check=0).stdout
    sections = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            title = line
        else:
            sections.setdefault(title, []).append(line)
    for title in ("tasks:", "plugins:"):
        rows = sections[title]
        # The third column (the version) starts at the same place in every row, after two spaces at least.
        starts = {re.match(r"  \S+  +\S+  +", row).end() for row in rows}
        assert len(starts) == 1, "\n".join(rows)
        (start,) = starts
        assert {row[start:].split()[0] for row in rows} <= {"0.1.0", "1.2"}, "\n".join(rows)


def test_two_plugins_with_one_task_name_is_a_clear_error(tmp_path):
    env = installed_fake(tmp_path)
    make_distribution(tmp_path, "clashplug", "clash_plugin", CLASH)
    result = cli("list", env=env, check=2)
    assert "registered twice" in result.stderr
    assert "faketasks 1.2" in result.stderr and "clashplug 1.2" in result.stderr
    assert "Traceback" not in result.stderr
    # ... and the user can switch the clashing plugin off, the pytest way.
    ok = cli("-p", "no:clash_plugin", "list", "--json", env=env, check=0)
    tasks = {t["task"]: t for t in json.loads(ok.stdout)["tasks"]}
    assert tasks["fake"]["distribution"] == "faketasks"


def test_autoload_can_be_disabled_and_plugins_named_explicitly(tmp_path):
    env = {"KERASAPPS_DISABLE_PLUGIN_AUTOLOAD": "1", **installed_fake(tmp_path)}
    assert json.loads(cli("list", "--json", env=env, check=0).stdout)["tasks"] == []
    data = json.loads(cli("-p", "fakedist", "list", "--json", env=env, check=0).stdout)
    assert [t["task"] for t in data["tasks"]] == ["fake"]
    assert data["datasets"] == []  # builtin not named: not loaded


def test_blocked_plugin_is_not_loaded(tmp_path):
    env = installed_fake(tmp_path)
    assert "fake" in {t["task"] for t in json.loads(cli("list", "--json", env=env, check=0).stdout)["tasks"]}
    data = json.loads(cli("-p", "no:fakedist", "list", "--json", env=env, check=0).stdout)
    assert "fake" not in {t["task"] for t in data["tasks"]}


@pytest.mark.parametrize("args,fragment", [
    (["run", "nosuchtask"], "unknown task 'nosuchtask'; known tasks: "),
    (["run", "fake", "--set", "nosuchkey=1", "--print-config"], "unknown config key 'nosuchkey'"),
    (["run", "fake", "--set", "epochs=many", "--print-config"], "epochs: expected int"),
    # Every dataset mistake names what the task reads (the fake task reads `shapes` and folders).
    (["run", "fake", "--dataset", "folder:/no/such/dir", "--print-config"],
     "--dataset folder:/no/such/dir: no such folder '/no/such/dir'"),
    (["run", "fake", "--dataset", "tfds:mnist", "--print-config"],
     "task 'fake' cannot read tfds dataset 'tfds:mnist'; it reads shapes or folder:PATH (see `kerasapps info fake`)"),
    (["run", "fake", "--dataset", "nosuchdata", "--print-config"],
     "unknown dataset 'nosuchdata'; it reads shapes or folder:PATH ("),
    (["train", "fake", "--dataset", "fake-words"], "cannot read dataset 'fake-words'; it reads shapes or folder:PATH ("),
    (["run", "fake", "--config", "/no/such.yaml", "--print-config"], "cannot read config file"),
    (["run", "fake", "--strategy", "bogus"], "Invalid value for '--strategy'"),
])
def test_user_mistakes_exit_2_with_one_line(args, fragment):
    from click.testing import CliRunner

    from kerasapps.cli import cli as kerasapps_cli

    sys.path.insert(0, FAKE_ENV["PYTHONPATH"])  # in-process: the fake plugin on the import path
    try:
        result = CliRunner().invoke(kerasapps_cli, [*FAKE, *args], catch_exceptions=True)
    finally:
        sys.path.remove(FAKE_ENV["PYTHONPATH"])
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_print_config_resolves_precedence(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 7\nbatch_size: 32\nparams:\n  units: 3\nseed: 5\n")
    data = json.loads(cli(*FAKE, "run", "fake", "--config", config, "--batch-size", "8", "--set", "units=4",
                          "--print-config", env=FAKE_ENV, check=0).stdout)
    assert data["params"]["epochs"] == 7  # file
    assert data["params"]["batch_size"] == 8  # option beats file
    assert data["params"]["units"] == 4  # --set beats file
    assert data["seed"] == 5 and data["dataset"] == "shapes" and data["task"] == "fake"


CALLBACK_PLUGIN = """
import json
import kerasapps

@kerasapps.hookimpl
def kerasapps_training_callbacks(task, config, workdir):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            (workdir / "recorded.json").write_text(json.dumps({"task": task.name, "epoch": epoch,
                                                               "keys": sorted(logs), "seed": config["seed"]}))

    return [EpochRecorder()]
"""


def test_plugin_callbacks_join_training(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "recorderplug", "recorder_plugin", CALLBACK_PLUGIN)
    cli(*FAKE, "train", "fake", "--epochs", "1", "--seed", "7", "--workdir", tmp_path / "run",
        env={"PYTHONPATH": os.pathsep.join([str(site), FAKE_ENV["PYTHONPATH"]])}, check=0)
    recorded = json.loads((tmp_path / "run" / "recorded.json").read_text())
    assert recorded["task"] == "fake" and recorded["epoch"] == 0 and recorded["seed"] == 7
    assert "val_accuracy" in recorded["keys"] and "loss" in recorded["keys"]


def test_every_installed_task_class_loads_without_tensorflow():
    """`info`, `--print-config` and the option checks load the task class only: no TensorFlow start-up.
    Every task installed here (the first-party ones, where they are) and the fake one."""
    code = (
        "import sys\n"
        "from kerasapps.registry import discover\n"
        f"sys.path.insert(0, {str(ROOT / 'tests' / 'plugins')!r})\n"
        "registry = discover(['kerasapps_fake'])\n"
        "names = sorted(registry.tasks)\n"
        "for name in names:\n"
        "    registry.load_task(name).describe()\n"
        "import json\n"
        "print(json.dumps([names, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names, imported = json.loads(out.splitlines()[-1])
    assert "fake" in names and imported == [], out
