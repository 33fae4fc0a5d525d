"""``--dataset SPEC``: which data a task reads, and the shared loaders.

A spec is one of:

- ``NAME``: a dataset registered by a plugin (``shapes`` is built in);
- ``tfds:NAME[/CONFIG]``: a TensorFlow Datasets dataset (downloads on first use,
  into ``--data-dir``);
- ``folder:PATH``: the user's own files, in the layout the task documents.

Example::

    source = parse_dataset_spec("folder:data/pets", registry)
    source.kind, source.path   # ("folder", PosixPath("data/pets"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from typing import Callable

from kerasapps.errors import UsageError

OFFLINE_HINT = (
    "kerasapps needs no network with `--dataset shapes` (built in) or `--dataset folder:PATH` (your own files)"
)


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """A parsed ``--dataset`` spec. ``kind`` names its :class:`DatasetKind` ("registered", "tfds", "folder")."""

    spec: str
    kind: str
    name: str
    data_dir: str | None = None
    factory: str | None = None  # for registered datasets: what DatasetSpec.load imports

    @property
    def path(self) -> pathlib.Path:
        return pathlib.Path(self.name)

    def load(self):
        """Return a registered dataset's object (e.g. the ``shapes`` module)."""
        from kerasapps.registry import DatasetSpec

        return DatasetSpec(self.name, self.factory).load()

    def __str__(self):
        return self.spec


def _parse_tfds(spec: str, rest: str, registry, data_dir) -> DatasetSource:
    if not rest:
        raise UsageError("--dataset tfds: needs a dataset name, e.g. tfds:mnist")
    return DatasetSource(spec, "tfds", rest, data_dir)


def _parse_folder(spec: str, rest: str, registry, data_dir) -> DatasetSource:
    path = pathlib.Path(rest).expanduser()
    if not rest or not path.is_dir():
        raise UsageError(f"--dataset {spec}: no such folder {str(path)!r}")
    return DatasetSource(spec, "folder", str(path), data_dir)


def _parse_registered(spec: str, rest: str, registry, data_dir) -> DatasetSource:
    dataset = registry.dataset(spec)
    if dataset is None:
        raise UsageError(f"unknown dataset {spec!r}")
    return DatasetSource(spec, "registered", spec, data_dir, dataset.factory)


@dataclasses.dataclass(frozen=True)
class DatasetKind:
    """One kind of ``--dataset`` value: how it is written and parsed, the Task method that loads
    it (``load_<name>``) and how ``kerasapps info`` shows it. A new kind is one entry of
    :data:`DATASET_KINDS` (and a ``load_<name>`` method in the tasks that read it)."""

    name: str  # DatasetSource.kind
    prefix: str  # what a spec of this kind starts with; "" for a registered dataset's bare name
    syntax: str  # how info and errors write it
    help: str  # info's line about it
    parse: Callable  # (spec, text after the prefix, registry, data_dir) -> DatasetSource

    @property
    def loader(self) -> str:
        return f"load_{self.name}"


DATASET_KINDS = {kind.name: kind for kind in (
    DatasetKind("registered", "", "NAME", "built in or registered by plugins", _parse_registered),
    DatasetKind("tfds", "tfds:", "tfds:NAME[/CONFIG]", "a TensorFlow Datasets dataset (downloads into --data-dir)",
                _parse_tfds),
    DatasetKind("folder", "folder:", "folder:PATH", "your own files, in the layout the task documents", _parse_folder),
)}


def dataset_choices(task_class) -> list[str]:
    """What ``--dataset`` can be for ``task_class``: its registered datasets' names, then the
    syntax of each other kind it reads, e.g. ``["shapes", "tfds:NAME[/CONFIG]", "folder:PATH"]``."""
    choices = []
    for name in task_class.dataset_kinds:
        kind = DATASET_KINDS.get(name)
        if kind is None:
            continue
        choices.extend(task_class.registered_datasets if name == "registered" else [kind.syntax])
    return choices


def _either(choices) -> str:
    return " or ".join([", ".join(choices[:-1]), choices[-1]]) if len(choices) > 1 else "".join(choices) or "nothing"


def cannot_read(task_class, kind: str, spec: str) -> UsageError:
    """The one error for a ``--dataset`` that ``task_class`` does not read: it names what it reads.

    Returns the UsageError (to raise)."""
    label = "" if kind == "registered" else f"{kind} "
    return UsageError(f"task {task_class.name!r} cannot read {label}dataset {spec!r}; it reads "
                      f"{_either(dataset_choices(task_class))} (see `kerasapps info {task_class.name}`)")


def parse_dataset_spec(spec: str, registry, data_dir: str | None = None, task=None) -> DatasetSource:
    """Parse and check a ``--dataset`` value; UsageError if it names nothing usable, or (given
    ``task``, a Task class) nothing that task reads. Every such error lists what the task reads.

    Example::

        parse_dataset_spec("folder:data/pets", registry, task=registry.load_task("classification"))
    """
    prefix, sep, rest = spec.partition(":")
    kind = DATASET_KINDS["registered"]
    for candidate in DATASET_KINDS.values():
        if sep and candidate.prefix == prefix + sep:
            kind = candidate
    if kind.name == "registered":
        rest = spec
    reads = f"; it reads {_either(dataset_choices(task))} (see `kerasapps info {task.name}`)" if task else ""
    if task is not None and kind.name not in task.dataset_kinds:
        raise cannot_read(task, kind.name, spec)
    if task is not None and kind.name == "registered" and spec not in task.registered_datasets:
        if registry.dataset(spec) is not None:
            raise cannot_read(task, kind.name, spec)
        raise UsageError(f"unknown dataset {spec!r}{reads}")
    try:
        return kind.parse(spec, rest, registry, data_dir)
    except UsageError as exc:
        if not str(exc).startswith("unknown dataset"):
            raise
        every = sorted(registry.datasets) + [k.syntax for k in DATASET_KINDS.values() if k.prefix]
        raise UsageError(f"{exc}{reads or '; use ' + _either(every)}") from None


def load_tfds(source: DatasetSource, splits=("train", "validation", "test"), **kwargs):
    """Load a TFDS dataset's train/validation/test splits (validation carved from train if absent).

    Returns ``(dict split -> tf.data.Dataset, tfds.core.DatasetInfo)``. Network and
    unknown-name failures become a UsageError that names the offline alternatives.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(source.name, data_dir=source.data_dir)
    except Exception as exc:
        raise UsageError(f"unknown or unavailable TFDS dataset {source.name!r}: {_first_line(exc)}") from None
    available = set(builder.info.splits.keys()) if builder.info.splits else set()
    try:
        with _few_download_retries():
            builder.download_and_prepare()
    except Exception as exc:
        raise UsageError(
            f"could not download or prepare TFDS dataset {source.name!r} into "
            f"{source.data_dir or '~/tensorflow_datasets'} (no network?): {_first_line(exc)}. {OFFLINE_HINT}"
        ) from None
    # Split metadata can be missing (e.g. under tfds.testing.mock_data): assume train + test.
    available = set(builder.info.splits.keys()) or available or {"train", "test"}
    mapping = tfds_split_mapping(available)
    datasets = {split: builder.as_dataset(split=mapping[split], **kwargs) for split in splits}
    return datasets, builder.info


@contextlib.contextmanager
def _few_download_retries(retries: int = 2):
    """TFDS retries a failed download 10 times with exponential back-off: about 3.5
    minutes before an offline user learns anything. Two retries keep transient
    failures covered. (A module constant of TFDS; skipped if it ever moves.)"""
    try:
        from tensorflow_datasets.core.download import downloader
    except ImportError:
        yield
        return
    saved = getattr(downloader, "MAX_RETRIES", None)
    if saved is None:
        yield
        return
    downloader.MAX_RETRIES = min(saved, retries)
    try:
        yield
    finally:
        downloader.MAX_RETRIES = saved


def tfds_split_mapping(available) -> dict[str, str]:
    """Map train/validation/test to the TFDS split names a dataset actually has."""
    available = set(available)
    if "train" not in available:
        raise UsageError(f"TFDS dataset has no 'train' split (has: {', '.join(sorted(available))})")
    validation = next((s for s in ("validation", "valid", "dev") if s in available), None)
    test = "test" if "test" in available else None
    mapping = {"train": "train", "validation": validation, "test": test}
    if validation is None and test is None:
        mapping.update(train="train[:80%]", validation="train[80%:90%]", test="train[90%:]")
    elif validation is None:
        mapping.update(train="train[:90%]", validation="train[90%:]")
    elif test is None:
        mapping["test"] = validation
    return mapping


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
