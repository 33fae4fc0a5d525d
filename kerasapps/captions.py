"""Folders of captioned images in Flickr8k's layout, for every task that pairs images with sentences.

``PATH/Images/`` (or ``images/``) holds the pictures; ``PATH/captions.txt`` has a header
row ``image,caption`` and one row per caption, several per image (commas inside a caption
are fine). Split lists ``Flickr_8k.{train,dev,test}Images.txt`` are used when all three
exist; otherwise images split 80/10/10 by a stable hash of the file name.

Example::

    folder = read_captions_folder(pathlib.Path("flickr8k"))
    folder.captions["train"][0]                      # ["a dog runs", "a brown dog ...", ...]
    images = folder.image_dataset("train", image_size=64)   # uint8 [64, 64, 3] each, cached
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import pathlib
import sys

from kerasapps.data import hash_split
from kerasapps.errors import UsageError
from kerasapps.images import check_image_files

SPLITS = ("train", "validation", "test")
LAYOUT = (
    "PATH/Images/*.jpg|png and PATH/captions.txt with a header row `image,caption` and one row per "
    "caption (several per image, Flickr8k's layout); split lists PATH/Flickr_8k.{train,dev,test}Images.txt "
    "are used if present, else images are split 80/10/10 by a stable hash of the file name"
)
SPLIT_LISTS = {"train": "Flickr_8k.trainImages.txt", "validation": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}


@dataclasses.dataclass
class CaptionsFolder:
    """What :func:`read_captions_folder` found: per split, image names and their captions."""

    image_dir: pathlib.Path
    names: dict
    captions: dict
    skipped_rows: int = 0

    def image_dataset(self, split: str, image_size: int):
        """``tf.data.Dataset`` of the split's images, decoded, resized to a square, uint8, cached."""
        import tensorflow as tf

        from kerasapps.images import read_image

        size = (image_size, image_size)

        def load(path):
            return tf.cast(tf.round(read_image(path, size)), tf.uint8)

        paths = [str(self.image_dir / name) for name in self.names[split]]
        return tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()


def read_captions_folder(root, *, skip_bad_examples: bool = False) -> CaptionsFolder:
    """Read and check a captioned-image folder (see the module docstring for its layout).

    A row naming a missing image or holding an empty caption is a UsageError naming the
    file and row, unless ``skip_bad_examples`` (then it is counted in ``skipped_rows``
    and the count is printed on standard error).
    Unreadable images are reported by name before any training starts.
    """
    root = pathlib.Path(root)
    image_dir = next((root / d for d in ("Images", "images") if (root / d).is_dir()), None)
    captions_file = root / "captions.txt"
    if image_dir is None or not captions_file.exists():
        raise UsageError(f"{root}: expected Images/ and captions.txt ({LAYOUT})")
    by_image: dict[str, list[str]] = {}
    skipped = 0
    try:
        rows = list(enumerate(csv.reader(io.StringIO(captions_file.read_text(encoding="utf-8"), newline="")),
                              start=1))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{captions_file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, row in rows:
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["image", "caption"]:
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        name, caption = row[0].strip(), ",".join(row[1:]).strip()
        problem = None
        if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == "..":
            problem = f"image {name!r} leads outside {image_dir}"  # never read files outside the dataset
        elif not (image_dir / name).is_file():
            problem = f"image {name!r} not found in {image_dir}"
        elif not caption:
            problem = "empty caption"
        if problem:
            if skip_bad_examples:
                skipped += 1
                continue
            raise UsageError(f"{captions_file}, row {number}: {problem} "
                             "(--set skip_bad_examples=true skips such rows)")
        by_image.setdefault(name, []).append(caption)
    if skipped:
        print(f"skipped {skipped} bad rows of {captions_file}", file=sys.stderr)
    if not by_image:
        raise UsageError(f"{captions_file} has no captions")
    split_of = _splits(root, by_image)
    names = {split: sorted(n for n in by_image if split_of[n] == split) for split in SPLITS}
    for split in SPLITS:
        if not names[split]:
            raise UsageError(f"{root}: the {split} split has no images")
    check_image_files(image_dir / n for n in by_image)
    return CaptionsFolder(image_dir, names, {s: [by_image[n] for n in names[s]] for s in SPLITS}, skipped)


def _splits(root: pathlib.Path, by_image) -> dict[str, str]:
    if all((root / f).exists() for f in SPLIT_LISTS.values()):
        split_of = {}
        for split, file in SPLIT_LISTS.items():
            for line in (root / file).read_text().split():
                split_of[line.strip()] = split
        return {n: split_of.get(n, "unused") for n in by_image}
    return {n: hash_split(n) for n in by_image}
