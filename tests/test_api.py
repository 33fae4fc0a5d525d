"""The plugin contract as authors meet it: one import surface, checked when a task is loaded."""

import json
import os
import pathlib
import subprocess
import sys
import types
import warnings

import pytest

from tests.conftest import FAKE, FAKE_ENV, ROOT, cli, make_distribution

SPLIT_ORDER = ("train", "validation", "test")

LAZY_TASK = """
from kerasapps.api import Task, TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("lazy", "lazy_plugin:LazyTask", "forgot its serving function")]


class LazyTask(Task):
    name = "lazy"

    def load_registered(self):
        return {}

    def build_model(self):
        return None
"""

MISSPELT_HOOK = """
from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_task():  # one letter short of kerasapps_register_tasks
    return [TaskSpec("typo", "nowhere:Nothing", "never registered")]
"""


def test_api_is_cheap_to_import_and_every_name_resolves():
    code = ("import sys, kerasapps.api as api\n"
            "cheap = 'tensorflow' not in sys.modules\n"
            "missing = [n for n in api.__all__ if getattr(api, n, None) is None]\n"
            "print(cheap, missing)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []"


def test_first_party_plugins_import_only_the_api():
    offenders = []
    for path in [*ROOT.glob("plugins/*/kerasapps_*/*.py"), *ROOT.glob("examples/*/*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if (stripped.startswith(("from kerasapps.", "import kerasapps.")) and
                    not stripped.startswith(("from kerasapps.api import", "import kerasapps.api"))) or \
                    stripped in ("import kerasapps", "from kerasapps import"):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert offenders == []


def test_task_lacking_a_method_is_named_broken_and_others_keep_working(tmp_path):
    make_distribution(tmp_path, "lazyplug", "lazy_plugin", LAZY_TASK)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{FAKE_ENV['PYTHONPATH']}"}
    data = json.loads(cli(*FAKE, "list", "--check", "--json", env=env, check=1).stdout)  # exit 1: CI can gate on it
    assert "fake" in {t["task"] for t in data["tasks"]}
    assert "lazy" not in {t["task"] for t in data["tasks"]}
    assert "lazy_plugin" not in {p["plugin"] for p in data["plugins"]}  # listed once, as broken
    (broken,) = [b for b in data["broken_plugins"] if b.get("task") == "lazy"]
    assert broken["distribution"] == "lazyplug" and "lacks serving_function" in broken["error"]
    text = cli("list", "--check", env=env, check=1).stdout
    plugins_section, broken_section = text.split("plugins:\n", 1)[1].split("broken plugins:\n")
    assert "lazy_plugin" not in plugins_section
    assert broken_section.split()[:4] == ["lazy_plugin", "lazyplug", "1.2", "task"]
    # Plain `list` loads no task class (no TensorFlow): the lazy task is listed, and it exits 0.
    assert "lazy" in {t["task"] for t in json.loads(cli("list", "--json", env=env, check=0).stdout)["tasks"]}
    result = cli("run", "lazy", "--print-config", env=env, check=2)
    assert "task 'lazy' from plugin 'lazy_plugin' (lazyplug 1.2) is broken" in result.stderr
    assert "LazyTask lacks serving_function" in result.stderr and "Traceback" not in result.stderr
    assert "fake:" in cli(*FAKE, "info", "fake", env=env, check=0).stdout


def test_misspelt_hook_is_a_broken_plugin_naming_the_hook(tmp_path):
    make_distribution(tmp_path, "typoplug", "typo_plugin", MISSPELT_HOOK)
    result = cli(*FAKE, "list", "--json", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{FAKE_ENV['PYTHONPATH']}"},
                 check=0)
    data = json.loads(result.stdout)
    (broken,) = data["broken_plugins"]
    assert broken["plugin"] == "typo_plugin" and broken["distribution"] == "typoplug"
    assert "unknown hook kerasapps_register_task " in broken["error"]
    assert "kerasapps_register_tasks" in broken["error"]  # the hooks that exist, to compare
    assert "fake" in {t["task"] for t in data["tasks"]}
    assert "Traceback" not in result.stderr


def test_fake_plugin_passes_the_contract_check():
    data = json.loads(cli(*FAKE, "list", "--check", "--json", env=FAKE_ENV, check=0).stdout)
    assert "fake" in {t["task"] for t in data["tasks"]}
    assert data["broken_plugins"] == []


def fake_task_class():
    sys.path.insert(0, str(ROOT / "tests" / "plugins"))
    try:
        from kerasapps_fake import FakeTask
    finally:
        sys.path.pop(0)
    return FakeTask


def test_dataset_kinds_are_the_loaders_a_task_has():
    FakeTask = fake_task_class()
    assert FakeTask.dataset_kinds == ("registered", "folder")
    assert FakeTask.contract_problem() is None

    class NoData(minimal_task_class()):
        load_registered = None

    assert NoData.dataset_kinds == ()
    assert "reads no data" in NoData.contract_problem()


def minimal_task_class():
    """A task class with every method the contract requires, each doing nothing."""
    from kerasapps.api import Task

    class Minimal(Task):
        def load_registered(self):
            return {}

        def build_model(self):
            return None

        def serving_function(self, model):
            return None

    return Minimal


def test_run_context_is_given_not_set():
    from kerasapps.api import RunContext

    Tiny = minimal_task_class()
    context = RunContext(replicas=2, global_batch_size=64, drop_remainder=True, jit_compile=True, seed=3,
                         workdir="runs/x")
    task = Tiny(context=context)
    assert (task.seed, task.drop_remainder, task.jit_compile) == (3, True, True)
    assert task.context.per_replica_batch_size == 32 and task.context.workdir == pathlib.Path("runs/x")
    with pytest.raises(AttributeError):
        task.drop_remainder = False
    assert Tiny(seed=5).context.global_batch_size == Tiny.Config().batch_size and Tiny(seed=5).seed == 5


def test_plugin_with_the_old_evaluate_signature_still_works():
    from kerasapps.errors import PluginDeprecationWarning
    from kerasapps.task import evaluate_task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Old(minimal_task_class()):
            def evaluate(self, trainer, dataset):
                return {**trainer.evaluate(dataset), "model": trainer.model}

        class OldCallingSuper(minimal_task_class()):
            def evaluate(self, trainer, data):  # any names: two arguments are the old form
                return {**super().evaluate(trainer, data), "replicas": trainer.strategy.replicas}

    # Said when the class is defined (at import, before training), where the plugin defines it.
    assert [w.category for w in caught] == [PluginDeprecationWarning] * 2
    assert "implement evaluate(self, model, dataset, metrics)" in str(caught[0].message)
    assert caught[0].filename == __file__ and ".Old.evaluate(self, trainer, dataset)" in str(caught[0].message)
    assert Old.contract_problem() is None and OldCallingSuper.contract_problem() is None

    def measure(data):
        return {"loss": len(data)}

    assert evaluate_task(Old(), "the model", "the data", measure) == {"loss": 8, "model": "the model"}
    engine = types.SimpleNamespace(strategy=types.SimpleNamespace(replicas=2))
    assert evaluate_task(OldCallingSuper(), "the model", "data", measure, engine) == {"loss": 4, "replicas": 2}


def test_core_calls_the_loader_of_the_dataset_kind_then_prepare_datasets(tmp_path):
    import numpy as np
    import tensorflow as tf

    from kerasapps.data.sources import DatasetSource

    calls = []

    class Recording(fake_task_class()):
        def load_registered(self):
            calls.append("load_registered")
            return super().load_registered()

        def load_folder(self):  # a second kind: one blank image per example, 17 / 5 / 3 of them
            calls.append(f"load_folder {self.source.path.name}")
            self.info["colours"] = ["red", "green"]
            return {split: tf.data.Dataset.from_tensor_slices((np.zeros((n, 16, 16, 3), np.float32),
                                                               np.arange(n) % 2))
                    for split, n in (("train", 17), ("validation", 5), ("test", 3))}

        def prepare_datasets(self, splits):
            calls.append(f"prepare_datasets {sorted(splits)}")
            return super().prepare_datasets(splits)  # the default: batch each split

    assert Recording.dataset_kinds == ("registered", "folder")
    shapes = DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes")
    config = Recording.Config(train_examples=40, eval_examples=20, batch_size=16)
    datasets = Recording(config, shapes).build_datasets()
    assert calls == ["load_registered", "prepare_datasets ['test', 'train', 'validation']"]
    # Task.batch: training drops its short last batch, evaluation keeps it.
    assert [[int(x.shape[0]) for x, _ in datasets[s]] for s in SPLIT_ORDER] == [[16, 16], [16, 4], [16, 4]]

    calls.clear()
    folder = DatasetSource(f"folder:{tmp_path}", "folder", str(tmp_path))
    datasets = Recording(config, folder).build_datasets()
    assert calls == [f"load_folder {tmp_path.name}", "prepare_datasets ['test', 'train', 'validation']"]
    assert [[int(x.shape[0]) for x, _ in datasets[s]] for s in SPLIT_ORDER] == [[16], [5], [3]]


def test_prepare_datasets_shapes_what_the_loader_read_and_must_return_every_split():
    import tensorflow as tf

    from kerasapps.api import UsageError
    from kerasapps.data.sources import DatasetSource

    class Texts(fake_task_class()):
        def load_registered(self):  # not datasets: words, which prepare_datasets turns into ids
            return {"train": ["a", "b", "b"], "validation": ["b"], "test": ["a", "c"]}

        def prepare_datasets(self, splits):
            self.info["vocabulary"] = sorted(set(splits["train"]))
            ids = {s: [self.info["vocabulary"].index(w) if w in self.info["vocabulary"] else -1 for w in words]
                   for s, words in splits.items()}
            return {s: self.batch(tf.data.Dataset.from_tensor_slices(ids[s]), s) for s in splits if s != self.skip}

    shapes = DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes")
    task = Texts(Texts.Config(batch_size=2), shapes)
    task.skip = None
    datasets = task.build_datasets()
    assert task.info["vocabulary"] == ["a", "b"]
    assert [list(b.numpy()) for b in datasets["test"]] == [[0, -1]]
    task.skip = "validation"
    with pytest.raises(TypeError, match="Texts.prepare_datasets returned no validation split"):
        task.build_datasets()
    with pytest.raises(UsageError, match="cannot read tfds dataset"):  # the fake task has no load_tfds
        Texts(Texts.Config(), DatasetSource("tfds:mnist", "tfds", "mnist"))


def test_a_task_with_its_own_build_datasets_still_works():
    """Plugins written before load_KIND/prepare_datasets override build_datasets: the core
    still calls it, and lets them be given every --dataset kind (they check it themselves)."""
    from kerasapps.api import Task
    from kerasapps.data.sources import DatasetSource

    class Legacy(Task):
        def build_datasets(self):
            return {"train": self.source.kind, "validation": None, "test": None}

        def build_model(self):
            return None

        def serving_function(self, model):
            return None

    assert Legacy.dataset_kinds == ("registered", "tfds", "folder") and Legacy.contract_problem() is None
    assert Legacy(source=DatasetSource("tfds:mnist", "tfds", "mnist")).build_datasets()["train"] == "tfds"


def test_scheduled_learning_rate_is_the_constant_or_a_cosine_over_the_whole_run():
    import dataclasses

    from kerasapps.api import TaskConfig, field

    @dataclasses.dataclass
    class ScheduledConfig(TaskConfig):
        lr_schedule: str = field("cosine", "constant or cosine")

    class Scheduled(minimal_task_class()):
        Config = ScheduledConfig

    def task(**params):
        return Scheduled(ScheduledConfig(epochs=3, batch_size=32, learning_rate=0.1, **params))

    cosine = task().scheduled_learning_rate(400)  # 12 steps per epoch, 36 in the run
    assert [float(cosine(step)) for step in (0, 18, 36, 50)] == pytest.approx([0.1, 0.0525, 0.005, 0.005])
    assert float(task(steps_per_epoch=5).scheduled_learning_rate(400)(15)) == pytest.approx(0.005)
    assert task(lr_schedule="constant").scheduled_learning_rate(400) == 0.1
    assert task().scheduled_learning_rate(None) == 0.1  # no data built (export): nothing to schedule
    assert minimal_task_class()(TaskConfig(learning_rate=0.3)).scheduled_learning_rate(400) == 0.3


def test_every_exported_function_says_what_it_returns():
    import inspect

    from kerasapps import api

    silent = [name for name in api.__all__ if inspect.isfunction(getattr(api, name))
              and "Returns " not in (inspect.getdoc(getattr(api, name)) or "")]
    assert silent == [], f"kerasapps.api functions whose docstring has no 'Returns ...': {silent}"
