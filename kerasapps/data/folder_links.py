"""``folder:PATH`` datasets stay inside PATH: links that lead out of it are refused.

A dataset folder is often assembled from downloads or shared with others; a symbolic
link inside it (``train/cat/1.png -> /home/someone/private.png``, or a linked folder)
would make training read, and an exported model's metadata or sample pictures reveal,
files the user never meant to include. Every link under the folder is resolved before
the task reads anything; one that leads outside is an error naming it, unless the user
allows it with ``--set allow_links_outside_folder=true``. Links that stay inside are fine.

Example::

    check_folder_links("data/pets")   # UsageError naming the first link that leaves data/pets
"""

from __future__ import annotations

import os
import pathlib

from kerasapps.errors import UsageError

ALLOW_OPTION = "allow_links_outside_folder"


def links_leaving(root) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(link, where it resolves) for every symbolic link under ``root`` that resolves outside it.

    Linked folders are not followed: a link to a folder outside is reported once, and one
    inside is walked where it really is."""
    root = pathlib.Path(root)
    real_root = root.resolve()
    leaving = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = pathlib.Path(folder) / name
            if path.is_symlink():
                target = path.resolve()
                if target != real_root and real_root not in target.parents:
                    leaving.append((path, target))
    return leaving


def check_folder_links(root, allow: bool = False) -> None:
    """UsageError when a link under ``root`` leads outside it (unless ``allow``)."""
    if allow:
        return
    leaving = links_leaving(root)
    if leaving:
        link, target = leaving[0]
        more = f" (and {len(leaving) - 1} more)" if len(leaving) > 1 else ""
        raise UsageError(
            f"{link} is a link to {target}, outside the dataset folder {root}{more}; copy the files in, or "
            f"allow links that leave the folder with --set {ALLOW_OPTION}=true"
        )
