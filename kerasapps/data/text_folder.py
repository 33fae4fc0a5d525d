"""Folders of labelled sentences, the text counterpart of :func:`kerasapps.data.images.read_image_folder`.

Layout: one UTF-8 file per class, one sentence per line (blank lines skipped), either in split
folders (``root/train/positive.txt``, ``root/test/positive.txt``, ``root/val/`` optional) or
directly in ``root`` (``root/positive.txt``), then split 80/10/10 by a stable hash of
``class/line number``. With split folders and no validation folder, 10% of train (by the same
hash) is validation.

Example::

    splits, classes = read_text_folder("data/reviews")
    splits["train"][0]   # ("a warm and funny film", "positive")
    classes              # ["negative", "positive"]
"""

from __future__ import annotations

import pathlib

from kerasapps.data.images import split_folders
from kerasapps.data.splits import split_by_hash
from kerasapps.errors import UsageError

TEXT_SUFFIXES = (".txt",)
LAYOUT = ("PATH/train/<class>.txt and PATH/test/<class>.txt, one sentence per line, UTF-8 "
          "(PATH/val/ optional: else 10% of train); or PATH/<class>.txt alone, split 80/10/10")


def read_lines(path) -> list[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line of a UTF-8 file (a BOM is dropped, ends
    stripped). Bytes that are not UTF-8 are a UsageError naming the file and the line.

    Returns a list of ``(line number, text)``, line numbers from 1.
    """
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}, line {number}: not UTF-8 (byte {raw[exc.start]:#04x} at column "
                             f"{exc.start + 1}); save the file as UTF-8") from None
        if text:
            lines.append((number, text))
    return lines


def _class_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def read_text_folder(root, *, layout: str = LAYOUT, test_required: bool = True):
    """The labelled sentences of a folder, split three ways and every file read, before any training.

    Returns ``({"train": [(text, class), ...], "validation": [...], "test": [...]}, class_names)``,
    class names sorted. A folder without class files, a split without sentences, a class that is
    in validation or test but not in train, a missing ``test/`` (with ``test_required``; else test
    is validation) or a file that is not UTF-8 is a UsageError naming it.
    """
    root = pathlib.Path(root)
    hint = f" (layout: {layout})" if layout else ""

    def items_in(folder):
        files = _class_files(folder)
        return [(text, file.stem, f"{file.stem}/{number}") for file in files for number, text in read_lines(file)]

    folders = split_folders(root)
    if "train" in folders:
        items = {split: items_in(folder) for split, folder in folders.items()}
        if "validation" not in folders:
            items.update(split_by_hash(items["train"], lambda item: item[2], (("train", 0.9), ("validation", 0.1))))
        if "test" not in folders:
            if test_required:
                raise UsageError(f"{root} has train/ but no test/ folder{hint}")
            items["test"] = items["validation"]
    else:
        if not _class_files(root):
            raise UsageError(f"no class files (*.txt) under {root}{hint}")
        items = split_by_hash(items_in(root), lambda item: item[2])
    for split in ("train", "validation", "test"):
        if not items[split]:
            raise UsageError(f"{root}: the {split} split has no sentences{hint}")
    classes = sorted({label for _, label, _ in items["train"]})
    for split in ("validation", "test"):
        unknown = {label for _, label, _ in items[split]} - set(classes)
        if unknown:
            raise UsageError(f"{root}/{split} has classes not in train: {', '.join(sorted(unknown))}")
    return {split: [(text, label) for text, label, _ in items[split]] for split in ("train", "validation", "test")}, classes
