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

from kerasapps.errors import UsageError

OFFLINE_HINT = (
    "kerasapps needs no network with `--dataset shapes` (built in) or `--dataset folder:PATH` (your own files)"
)


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """A parsed ``--dataset`` spec. ``kind`` is "registered", "tfds" or "folder"."""

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


def parse_dataset_spec(spec: str, registry, data_dir: str | None = None) -> DatasetSource:
    """Parse and check a ``--dataset`` value; UsageError if it names nothing usable."""
    kind, sep, rest = spec.partition(":")
    if sep and kind == "tfds":
        if not rest:
            raise UsageError("--dataset tfds: needs a dataset name, e.g. tfds:mnist")
        return DatasetSource(spec, "tfds", rest, data_dir)
    if sep and kind == "folder":
        path = pathlib.Path(rest).expanduser()
        if not rest or not path.is_dir():
            raise UsageError(f"--dataset {spec}: no such folder {str(path)!r}")
        return DatasetSource(spec, "folder", str(path), data_dir)
    dataset = registry.dataset(spec)
    if dataset is None:
        known = ", ".join(sorted(registry.datasets)) or "none"
        raise UsageError(
            f"unknown dataset {spec!r}; use a registered dataset ({known}), tfds:NAME[/CONFIG] or folder:PATH"
        )
    return DatasetSource(spec, "registered", spec, data_dir, dataset.factory)


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
