"""The models a server sees on disk: ``BASE/<name>/<version>/`` SavedModels, rescanned on every request.

A version folder serves only when it is complete: an integer name, ``saved_model.pb`` and
a ``variables/`` folder (the core's exports are renamed into place whole, and their hidden
``.export-*`` staging folders never match). New versions are loaded as they appear, so a
fresh export serves without a restart; the newest version that loaded is the default.

Example::

    repo = Repository("saved_models")
    repo.refresh()                       # {"classification": [1, 2], ...}
    version = await repo.version("classification", None)   # the newest loaded one
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from dataclasses import dataclass, field


def is_complete_version(path: pathlib.Path) -> bool:
    """An integer-named folder holding ``saved_model.pb`` and ``variables/``."""
    return path.name.isdigit() and (path / "saved_model.pb").is_file() and (path / "variables").is_dir()


@dataclass
class ModelVersion:
    """One SavedModel version: its folder, load state and, once loaded, its signatures."""

    name: str
    number: int
    path: pathlib.Path
    state: str = "LOADING"  # TF Serving's ModelVersionStatus.State: LOADING, AVAILABLE, END
    error: str = ""
    signatures: dict = field(default_factory=dict)
    loaded: object = None
    ready: asyncio.Future | None = None
    batchers: dict = field(default_factory=dict)  # signature name -> Batcher

    def load(self) -> None:
        """Load the SavedModel (blocking: run it in a thread)."""
        import tensorflow as tf

        try:
            self.loaded = tf.saved_model.load(str(self.path))
            self.signatures = dict(self.loaded.signatures)
            if not self.signatures:
                raise ValueError("the SavedModel has no signatures")
            self.state = "AVAILABLE"
        except Exception as exc:  # any load failure leaves the version unservable, never the server down
            self.state, self.error = "END", f"cannot load {self.path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    def status(self) -> dict:
        """This version's entry in TF Serving's GetModelStatusResponse."""
        failed = self.state == "END"
        return {"version": str(self.number), "state": self.state,
                "status": {"error_code": "UNKNOWN" if failed else "OK", "error_message": self.error}}

    def signature_def_map(self) -> dict:
        """The SavedModel's signature_def map as TF Serving's metadata API writes it (proto JSON)."""
        from google.protobuf import json_format
        from tensorflow.core.protobuf import saved_model_pb2

        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((self.path / "saved_model.pb").read_bytes())
        graph = next(g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags)
        options = {"preserving_proto_field_name": True}
        try:
            return json_format.MessageToDict(graph, always_print_fields_with_no_presence=True, **options)["signature_def"]
        except TypeError:  # protobuf < 5.26 spells the option differently
            return json_format.MessageToDict(graph, including_default_value_fields=True, **options)["signature_def"]

    def assets_metadata(self) -> dict:
        """``assets/kerasapps.json`` (task name, config) when the export has it, else {}."""
        try:
            return json.loads((self.path / "assets" / "kerasapps.json").read_text())
        except (OSError, ValueError):
            return {}


class Repository:
    """Every model under a base folder (``BASE/<name>/<version>/``), one model folder
    (``NAME/<version>/``) or one SavedModel folder, with their loaded versions."""

    def __init__(self, root, labels: dict | None = None):
        self.root = pathlib.Path(root)
        self.labels = labels or {}  # {(model, label): version}
        self.versions: dict[tuple[str, int], ModelVersion] = {}

    def _scan(self) -> dict[str, dict[int, pathlib.Path]]:
        if (self.root / "saved_model.pb").is_file():  # one SavedModel folder
            number = int(self.root.name) if self.root.name.isdigit() else 1
            name = self.root.parent.name if self.root.name.isdigit() else self.root.name
            return {name: {number: self.root}} if (self.root / "variables").is_dir() else {}
        folders = [self.root] if self._holds_versions(self.root) else sorted(
            p for p in self._children(self.root) if not p.name.startswith("."))
        found = {}
        for folder in folders:
            versions = {int(p.name): p for p in self._children(folder) if is_complete_version(p)}
            if versions:
                found[folder.name] = versions
        return found

    @staticmethod
    def _children(folder: pathlib.Path):
        try:
            return [p for p in folder.iterdir() if p.is_dir()]
        except OSError:
            return []

    def _holds_versions(self, folder: pathlib.Path) -> bool:
        return any(is_complete_version(p) for p in self._children(folder))

    def refresh(self) -> dict[str, list[int]]:
        """Rescan the disk: start loading new complete versions, forget removed ones.

        Returns model name -> version numbers (ascending). Call it from the event loop.
        """
        found = self._scan()
        seen = set()
        for name, versions in found.items():
            for number, path in versions.items():
                key = (name, number)
                seen.add(key)
                if key not in self.versions or self.versions[key].path != path:
                    version = ModelVersion(name, number, path)
                    version.ready = asyncio.ensure_future(asyncio.to_thread(version.load))
                    self.versions[key] = version
        for key in set(self.versions) - seen:
            del self.versions[key]
        return {name: sorted(v) for name, v in found.items()}

    def model_versions(self, name: str) -> list[ModelVersion]:
        return sorted((v for (n, _), v in self.versions.items() if n == name), key=lambda v: v.number)

    async def wait_loaded(self, name: str) -> list[ModelVersion]:
        """Rescan, then wait until every version of ``name`` has finished loading (or failed)."""
        self.refresh()
        versions = self.model_versions(name)
        await asyncio.gather(*(v.ready for v in versions))
        return versions

    async def version(self, name: str, number: int | None = None, label: str | None = None) -> ModelVersion:
        """The version a request names (default: the newest that loaded); LookupError (404) if none."""
        versions = await self.wait_loaded(name)
        if label is not None:
            if (name, label) not in self.labels:
                raise LookupError(f"Unrecognized servable version label: {label}")
            number = self.labels[(name, label)]
        available = [v for v in versions if v.state == "AVAILABLE"]
        if number is None:
            if not available:
                raise LookupError(f"Servable not found for request: Latest({name})")
            return available[-1]
        for version in available:
            if version.number == number:
                return version
        raise LookupError(f"Servable not found for request: Specific({name}, {number})")
