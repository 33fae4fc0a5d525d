"""The --dataset kinds are one table (kerasapps.data.sources.DATASET_KINDS): parsing, the loader a
kind calls, `kerasapps info` and every dataset error read it, and each names only what a task reads."""

import dataclasses
import json

import pytest

from tests.conftest import FAKE, FAKE_ENV, cli
from kerasapps.api import DatasetSpec, Task, UsageError
from kerasapps.data import sources
from kerasapps.data.sources import DATASET_KINDS, DatasetKind, dataset_choices, parse_dataset_spec


class Registry:
    """The two methods of the plugin registry that parsing reads."""

    datasets = {"shapes": DatasetSpec("shapes", "kerasapps.data.shapes")}

    def dataset(self, name):
        return self.datasets.get(name)


class FolderOnly(Task):
    name = "folder-only"

    def load_folder(self):
        return {}

    def build_model(self):
        raise NotImplementedError

    def serving_function(self, model):
        raise NotImplementedError


def test_info_lists_only_the_datasets_the_task_reads():
    text = cli(*FAKE, "info", "fake", env=FAKE_ENV, check=0).stdout
    section = [line.strip() for line in text.split("datasets (--dataset):")[1].split("\n\n")[0].strip().splitlines()]
    # The fake task has load_registered and load_folder: no tfds line, no dataset it does not read
    # (fake-words, which the fake plugin registers); the folder line is the task's own folder_layout.
    assert section == ["shapes  (built in or registered by plugins)",
                       "folder:PATH  PATH/<colour>/*.png (or PATH/train/<colour>/..., PATH/test/<colour>/...)"]
    description = json.loads(cli(*FAKE, "info", "fake", "--json", env=FAKE_ENV, check=0).stdout)
    assert description["datasets"] == ["shapes", "folder:PATH"] and description["dataset_kinds"] == ["registered",
                                                                                                  "folder"]


def test_a_task_without_a_registered_loader_is_offered_no_registered_dataset(tmp_path):
    assert FolderOnly.dataset_kinds == ("folder",)
    assert dataset_choices(FolderOnly) == ["folder:PATH"]
    with pytest.raises(UsageError, match=r"^task 'folder-only' cannot read dataset 'shapes'; it reads folder:PATH \("):
        parse_dataset_spec("shapes", Registry(), task=FolderOnly)
    assert parse_dataset_spec(f"folder:{tmp_path}", Registry(), task=FolderOnly).kind == "folder"
    # The task's own check (for code that builds a task without the runner) says the same.
    source = parse_dataset_spec("shapes", Registry())
    with pytest.raises(UsageError, match=r"^task 'folder-only' cannot read dataset 'shapes'; it reads folder:PATH \("):
        FolderOnly(source=source)


def test_a_new_kind_is_one_table_entry(monkeypatch, tmp_path):
    def parse_csv(spec, rest, registry, data_dir):
        return sources.DatasetSource(spec, "csv", rest, data_dir)

    kinds = dict(DATASET_KINDS, csv=DatasetKind("csv", "csv:", "csv:FILE", "one row per example", parse_csv))
    monkeypatch.setattr(sources, "DATASET_KINDS", kinds)
    monkeypatch.setitem(DATASET_KINDS, "csv", kinds["csv"])  # what Task subclasses look up

    class CsvTask(FolderOnly):
        name = "csv-task"

        def load_csv(self):
            return {}

    assert CsvTask.dataset_kinds == ("folder", "csv")
    assert dataset_choices(CsvTask) == ["folder:PATH", "csv:FILE"]
    source = parse_dataset_spec("csv:rows.csv", Registry(), task=CsvTask)
    assert (source.kind, source.name, kinds[source.kind].loader) == ("csv", "rows.csv", "load_csv")
    with pytest.raises(UsageError, match=r"cannot read csv dataset 'csv:rows.csv'; it reads folder:PATH \("):
        parse_dataset_spec("csv:rows.csv", Registry(), task=FolderOnly)


def test_without_a_task_an_unknown_name_lists_every_kind():
    with pytest.raises(UsageError) as error:
        parse_dataset_spec("nosuch", Registry())
    assert str(error.value) == "unknown dataset 'nosuch'; use shapes, tfds:NAME[/CONFIG] or folder:PATH"
    assert dataclasses.is_dataclass(DATASET_KINDS["tfds"]) and list(DATASET_KINDS) == ["registered", "tfds", "folder"]
