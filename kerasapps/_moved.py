"""Import paths of the flat layout before the core was grouped by role, kept for a deprecation period.

``import kerasapps.images`` still gives the module now at ``kerasapps.data.images`` (the same
module object, so patches and ``isinstance`` checks agree), with a :class:`DeprecationWarning`
that names the new path. Names that plugins need are in :mod:`kerasapps.api`; import them there.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module -> its new home; a moved package's submodules follow it (kerasapps.server.app).
# (kerasapps.export, an internal module, is not here: the name is the Python API's export function.)
MOVED_MODULES = {
    "kerasapps.runner": "kerasapps.training.runner",
    "kerasapps.engine": "kerasapps.training.engine",
    "kerasapps.runtime": "kerasapps.training.runtime",
    "kerasapps.distribute": "kerasapps.training.distribute",
    "kerasapps.options": "kerasapps.training.options",
    "kerasapps.workdir": "kerasapps.training.workdir",
    "kerasapps.workdir_lock": "kerasapps.training.lock",
    "kerasapps.launch": "kerasapps.training.launch",
    "kerasapps.transfer": "kerasapps.training.transfer",
    "kerasapps.images": "kerasapps.data.images",
    "kerasapps.captions": "kerasapps.data.captions",
    "kerasapps.text": "kerasapps.data.text",
    "kerasapps.folder_links": "kerasapps.data.folder_links",
    "kerasapps.datasets": "kerasapps.data",
    "kerasapps.server": "kerasapps.serving.server",
    "kerasapps.bleu": "kerasapps.metrics.bleu",
    "kerasapps.cider": "kerasapps.metrics.cider",
    "kerasapps.quality": "kerasapps.metrics.quality",
    "kerasapps.retrieval": "kerasapps.metrics.retrieval",
    "kerasapps.layers": "kerasapps.modeling.layers",
    "kerasapps.decoding": "kerasapps.modeling.decoding",
}


def warn_moved(old: str, new: str) -> None:
    # Attributed to the first frame outside the import system and this module: the user's import.
    # (warnings itself skips the import system's frames, so only this module's are counted.)
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and (frame.f_code.co_filename == __file__ or "importlib" in frame.f_code.co_filename):
        if frame.f_code.co_filename == __file__:
            stacklevel += 1
        frame = frame.f_back
    warnings.warn(f"{old} moved to {new}; the old path will be removed in a later release "
                  "(plugins: import from kerasapps.api)", DeprecationWarning, stacklevel=stacklevel)


def new_name(fullname: str) -> str | None:
    """Where an old module path lives now, or None if it did not move."""
    for old, new in MOVED_MODULES.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the old spec on the shared module object; give it back its own.
        module.__spec__ = self.own_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves the old flat paths (kerasapps.images, ...) to the modules' new homes, with a warning."""

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname) if fullname.startswith("kerasapps.") else None
        if new is None:
            return None
        warn_moved(fullname, new)
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())  # before any finder that could see a stale copy


def forward_old_names(package: str, old_module: str, names: dict[str, str]):
    """A module ``__getattr__`` for a package that replaced a module of the same name:
    ``names`` maps each of the old module's public names to the module that holds it now."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        warn_moved(f"{old_module}.{name}", f"{names[name]}.{name}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
