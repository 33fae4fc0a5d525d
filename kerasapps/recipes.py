"""Named recipes: the settings behind a task's measured figures, shipped with its plugin.

A task's recipes are the YAML or JSON config files in the ``recipes/`` folder of the package
that defines its task class (``kerasapps_segmentation/recipes/camvid.yaml`` for a class in
``kerasapps_segmentation.task``), installed as package data. A file's name less its suffix
is the recipe's name and its first comment line the description ``kerasapps info`` shows.
A file with a ``task:`` key belongs to that task alone (a package that defines several
tasks); one without belongs to every task the package defines. ``kerasapps run TASK
--recipe NAME`` reads the file as if it were given with ``--config``. No TensorFlow here.

Example::

    recipes = find_recipes(task_class, "segmentation")   # {"camvid": Recipe(...)}
    recipes["camvid"].load()                             # the file's settings, as --config reads them
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import sys

from kerasapps.config import load_config_file
from kerasapps.errors import UsageError

RECIPE_FOLDER = "recipes"
RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe file: its ``name`` (the file name less its suffix), where it is
    (an ``importlib.resources`` Traversable) and its first comment line."""

    name: str
    resource: object
    description: str

    def load(self) -> dict:
        """The file's settings, read as ``--config`` reads a file (a UsageError if it is malformed)."""
        with importlib.resources.as_file(self.resource) as path:
            return load_config_file(path)


def recipe_folder(task_class):
    """The ``recipes/`` folder of the package defining ``task_class``, or None (no package, no folder)."""
    module = sys.modules.get(task_class.__module__)
    package = getattr(module, "__package__", None)
    if not package:  # a top-level module: nowhere of its own to ship files
        return None
    folder = importlib.resources.files(package) / RECIPE_FOLDER
    return folder if folder.is_dir() else None


def _description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def find_recipes(task_class, task: str) -> dict[str, Recipe]:
    """Task ``task``'s recipes by name, in name order (``task``: the name it is registered under)."""
    folder = recipe_folder(task_class)
    if folder is None:
        return {}
    recipes = {}
    for resource in folder.iterdir():
        stem, dot, suffix = resource.name.rpartition(".")
        if not resource.is_file() or not dot or f".{suffix.lower()}" not in RECIPE_SUFFIXES:
            continue
        recipe = Recipe(stem, resource, _description(resource.read_text(encoding="utf-8")))
        if recipe.load().get("task", task) == task:
            recipes[stem] = recipe
    return dict(sorted(recipes.items()))


def find_recipe(task_class, task: str, name: str) -> Recipe:
    """Recipe ``name`` of task ``task``; an unknown name is a UsageError listing the task's recipes."""
    recipes = find_recipes(task_class, task)
    if name in recipes:
        return recipes[name]
    if recipes:
        raise UsageError(f"task {task!r} has no recipe {name!r}; its recipes: {', '.join(recipes)}")
    raise UsageError(f"task {task!r} has no recipe {name!r}; it ships no recipes")


__all__ = ["RECIPE_FOLDER", "RECIPE_SUFFIXES", "Recipe", "find_recipe", "find_recipes", "recipe_folder"]
