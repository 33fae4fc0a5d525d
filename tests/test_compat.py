"""Compatibility is tested, not promised: a plugin written against the previous release's API
keeps running, with deprecation warnings naming the new forms; a plugin's own failure is one
line naming the plugin, its distribution and the method, then its traceback; and a method the
core could not call is refused when the task is loaded, not after training."""

import json
import os
import subprocess
import sys
import warnings

import pytest

from tests.conftest import FAKE_ENV, cli, make_distribution

OLD = ["-p", "kerasapps_oldstyle"]  # tests/plugins/kerasapps_oldstyle.py, written the old way

FAULTY = """
from kerasapps.api import TaskSpec, hookimpl
from kerasapps_fake import FakeTask


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("failing", "faulty_plugin:FailingTask", "fails in evaluate"),
            TaskSpec("wrongsig", "faulty_plugin:WrongSignatureTask", "an evaluate the core cannot call")]


def ratio(metrics):
    return metrics["loss"] / 0


class FailingTask(FakeTask):
    name = "failing"

    def evaluate(self, model, dataset, metrics):
        return {**metrics, "ratio": ratio(metrics)}


class WrongSignatureTask(FakeTask):
    name = "wrongsig"

    def evaluate(self, model, dataset, metrics, baseline):
        return metrics
"""


@pytest.mark.slow
def test_plugin_written_for_the_previous_release_trains_evaluates_and_exports(tmp_path):
    result = cli(*OLD, "run", "oldstyle", "--workdir", tmp_path / "run", "--export-dir", tmp_path / "models",
                 env=FAKE_ENV, check=0)
    assert "epoch 2/2" in result.stdout  # its two epochs, then evaluation through super().evaluate(trainer, ...)
    test_line = next(line for line in result.stdout.splitlines() if line.startswith("test: "))
    assert "accuracy" in test_line and "parameters" in test_line and "replicas 1" in test_line
    assert f"exported: {tmp_path / 'models' / 'oldstyle' / '1'}" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and "accuracy" in metrics["metrics"]
    said = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(said) == 2, result.stderr
    init, evaluate = sorted(said)  # __init__ sorts first
    assert evaluate.startswith("warning: kerasapps_oldstyle.OldStyleTask.evaluate(self, trainer, dataset) is "
                               "deprecated: implement evaluate(self, model, dataset, metrics)")
    assert init.startswith("warning: kerasapps_oldstyle.OldStyleTask.__init__(self, config=None, source=None, "
                           "info=None, seed=0) is deprecated: take __init__(self, config=None, source=None, "
                           "info=None, seed=None, context=None)")
    assert "Traceback" not in result.stderr


def test_a_plugin_failing_during_a_run_is_named_in_one_line_then_its_traceback(tmp_path):
    from click.testing import CliRunner

    from kerasapps.cli import cli as kerasapps_cli

    site = tmp_path / "site"
    make_distribution(site, "faultyplug", "faulty_plugin", FAULTY)
    sys.path[:0] = [str(site), FAKE_ENV["PYTHONPATH"]]  # in-process: the installed plugin's entry point is found
    try:
        result = CliRunner().invoke(kerasapps_cli, ["run", "failing", "--workdir", str(tmp_path / "run"),
                                                    "--export-dir", str(tmp_path / "models")])
    finally:
        del sys.path[:2]
        sys.modules.pop("faulty_plugin", None)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "epoch 1/1" in result.stdout
    lines = result.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert lines[first] == ("error: plugin 'faulty_plugin' (faultyplug 1.2) failed in FailingTask.evaluate: "
                            "ZeroDivisionError: float division by zero")
    assert lines[first + 1] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: float division by zero"
    assert 'faulty_plugin.py", line' in result.stderr and "in ratio" in result.stderr


def test_a_method_the_core_cannot_call_is_refused_at_start_up(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "faultyplug", "faulty_plugin", FAULTY)
    env = {"PYTHONPATH": os.pathsep.join([str(site), FAKE_ENV["PYTHONPATH"]])}
    result = cli("run", "wrongsig", "--workdir", tmp_path / "run", env=env, check=2)
    assert result.stderr.strip() == (
        "error: task 'wrongsig' from plugin 'faulty_plugin' (faultyplug 1.2) is broken: WrongSignatureTask.evaluate"
        "(self, model, dataset, metrics, baseline) cannot take the core's call evaluate(model, dataset, metrics) "
        "(see kerasapps.api.Task.evaluate)")
    assert "epoch" not in result.stdout and not (tmp_path / "run").exists()


def test_signatures_are_checked_against_the_core_s_calls():
    from kerasapps.api import Task

    class Base(Task):
        def load_registered(self):
            return {}

        def build_model(self):
            return None

        def serving_function(self, model):
            return None

    class Callbacks(Base):
        def training_callbacks(self, model):
            return []

    class Flexible(Base):
        def evaluate(self, *args, **kwargs):
            return {}

        @staticmethod
        def describe_predictions(model, dataset, count=5):
            return []

        def save_samples(self, model, dataset, directory, count=8, extra=None):
            return []

    class NoConstructor(Base):
        def __init__(self):
            super().__init__()

    assert Base.contract_problem() is None and Flexible.contract_problem() is None
    assert Callbacks.contract_problem() == ("Callbacks.training_callbacks(self, model) cannot take the core's call "
                                            "training_callbacks(model, datasets, workdir) "
                                            "(see kerasapps.api.Task.training_callbacks)")
    assert NoConstructor.contract_problem().startswith("NoConstructor.__init__(self) cannot take the core's call")


def test_the_old_constructor_is_given_the_run_context():
    from kerasapps.api import RunContext, Task
    from kerasapps.errors import PluginDeprecationWarning
    from kerasapps.task import new_task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class OldConstructor(Task):
            def __init__(self, config=None, source=None, info=None, seed=0):
                super().__init__(config, source, info, seed)
                self.started_with = seed

            def load_registered(self):
                return {}

            def build_model(self):
                return None

            def serving_function(self, model):
                return None

    assert [w.category for w in caught] == [PluginDeprecationWarning]
    assert "OldConstructor.__init__(self, config=None, source=None, info=None, seed=0) is deprecated" in str(
        caught[0].message)
    context = RunContext(replicas=2, global_batch_size=64, seed=7)
    task = new_task(OldConstructor, OldConstructor.Config(), None, info={"colours": ["red"]}, context=context)
    assert task.context is context and (task.seed, task.started_with, task.info) == (7, 7, {"colours": ["red"]})
    assert OldConstructor.contract_problem() is None


def test_plugin_code_names_the_plugin_and_leaves_the_core_s_errors_alone():
    from kerasapps.errors import PluginFailed, UsageError
    from kerasapps.registry import PluginInfo, Registry, TaskSpec

    info = PluginInfo("tiny", "tiny_plugin", "kerasapps-tiny", "2.0")
    registry = Registry(plugins=[info], tasks={"tiny": (TaskSpec("tiny", "tiny_plugin.task:TinyTask"), info)},
                        datasets={}, plugin_manager=None)
    with pytest.raises(PluginFailed) as failed:
        with registry.plugin_code("tiny", "build_model"):
            raise ValueError("no such layer\nsecond line")
    assert str(failed.value) == ("plugin 'tiny' (kerasapps-tiny 2.0) failed in TinyTask.build_model: "
                                 "ValueError: no such layer")
    assert isinstance(failed.value.__cause__, ValueError)
    with pytest.raises(ValueError):  # no method named and no plugin frame: the core's own error
        with registry.plugin_code("tiny"):
            raise ValueError("core")
    with pytest.raises(UsageError):  # the user's mistake, reported by the CLI as it is
        with registry.plugin_code("tiny", "load_folder"):
            raise UsageError("no such folder")


def test_the_flat_layouts_import_paths_still_work_with_a_warning_naming_the_new_path(tmp_path):
    code = r'''
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import kerasapps.images as old_images
    from kerasapps.data import DatasetSource, hash_split
    from kerasapps.datasets import shapes
    from kerasapps.server.app import create_app
    from kerasapps.serving import predict_inputs
    import kerasapps.workdir_lock
import kerasapps.data.images, kerasapps.data.sources, kerasapps.data.shapes, kerasapps.training.lock
assert old_images is kerasapps.data.images and old_images.__spec__.name == "kerasapps.data.images"
assert DatasetSource is kerasapps.data.sources.DatasetSource and shapes is kerasapps.data.shapes
assert kerasapps.workdir_lock is kerasapps.training.lock
for warning in caught:
    assert warning.category is DeprecationWarning and warning.filename == __file__, (warning.filename, warning.message)
print(sorted({str(w.message).split(";")[0] for w in caught}))
'''
    script = tmp_path / "old_imports.py"  # a file of its own: each warning must name the line importing
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted([
        "kerasapps.data.DatasetSource moved to kerasapps.data.sources.DatasetSource",
        "kerasapps.data.hash_split moved to kerasapps.data.splits.hash_split",
        "kerasapps.datasets moved to kerasapps.data",
        "kerasapps.images moved to kerasapps.data.images",
        "kerasapps.server moved to kerasapps.serving.server",
        "kerasapps.server.app moved to kerasapps.serving.server.app",
        "kerasapps.serving.predict_inputs moved to kerasapps.serving.predict.predict_inputs",
        "kerasapps.workdir_lock moved to kerasapps.training.lock",
    ]))
