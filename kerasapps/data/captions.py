"""Folders of captioned images in Flickr8k's layout, for every task that pairs images with sentences.

``PATH/Images/`` (or ``images/``) holds the pictures; ``PATH/captions.txt`` has a header
row ``image,caption`` and one row per caption, several per image (commas and quotes inside a
caption are fine, CSV-quoted or not). The official release's ``Flickr8k.token.txt``
(``NAME.jpg#N<TAB>caption``) is read in its place when there is no ``captions.txt``.
With the split list ``Flickr_8k.trainImages.txt``, ``Flickr_8k.devImages.txt`` is the
validation split and ``Flickr_8k.testImages.txt`` the test split; a copy without the test
list has no test split of its own (scoring uses dev, and says so). Without split lists,
images split 80/10/10 by a stable hash of the file name.

Example::

    folder = read_captions_folder(pathlib.Path("flickr8k"))
    folder.captions["train"][0]                      # ["a dog runs", "a brown dog ...", ...]
    images = folder.image_dataset("train", image_size=64)   # uint8 [64, 64, 3] each, cached
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
import pathlib
import re
import sys

from kerasapps.data.splits import hash_split
from kerasapps.errors import UsageError
from kerasapps.data.images import check_image_files

SPLITS = ("train", "validation", "test")
LAYOUT = (
    "PATH/Images/*.jpg|png and PATH/captions.txt with a header row `image,caption` and one row per "
    "caption (several per image, Flickr8k's layout; Flickr8k.token.txt is read if there is no captions.txt); "
    "split lists PATH/Flickr_8k.{train,dev,test}Images.txt are used if present (without the test list, "
    "dev is also scored as the test split), else images are split 80/10/10 by a stable hash of the file name"
)
IMAGE_FOLDERS = ("Images", "images", "Flicker8k_Dataset", "Flickr8k_Dataset")  # the official zip's spelling too
CAPTION_FILES = ("captions.txt", "Flickr8k.token.txt")
SPLIT_LISTS = {"train": "Flickr_8k.trainImages.txt", "validation": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}


@dataclasses.dataclass
class CaptionsFolder:
    """What :func:`read_captions_folder` found: per split, image names and their captions."""

    image_dir: pathlib.Path
    names: dict
    captions: dict
    skipped_rows: int = 0
    #: what the split scored as "test" is: "test", or "dev" (the validation split) where the copy has no test list
    scored_split: str = "test"

    def image_dataset(self, split: str, image_size: int):
        """``tf.data.Dataset`` of the split's images, decoded, resized to a square, uint8, cached."""
        import tensorflow as tf

        from kerasapps.data.images import read_image

        size = (image_size, image_size)

        def load(path):
            return tf.cast(tf.round(read_image(path, size)), tf.uint8)

        paths = [str(self.image_dir / name) for name in self.names[split]]
        return tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()


def read_captions_folder(root, *, skip_bad_examples: bool = False, quiet: bool = False) -> CaptionsFolder:
    """Read and check a captioned-image folder (see the module docstring for its layout).

    Returns a :class:`CaptionsFolder`: the captions of each image, the split of each image and the count of
    skipped rows.

    A row naming a missing image or holding an empty caption is a UsageError naming the
    file and row, unless ``skip_bad_examples`` (then it is counted in ``skipped_rows``
    and the count is printed on standard error). Flickr8k's token file names a few captions
    ``NAME.jpg.1``, a photo the release does not have: those rows are left out with one note.
    Unreadable images are reported by name before any training starts; ``quiet`` keeps the
    notes (not the errors) off standard error.
    """
    root = pathlib.Path(root)
    image_dir = next((root / d for d in IMAGE_FOLDERS if (root / d).is_dir()), None)
    captions_file = next((root / f for f in CAPTION_FILES if (root / f).is_file()), None)
    if image_dir is None or captions_file is None:
        raise UsageError(f"{root}: expected Images/ and captions.txt ({LAYOUT})")
    try:
        text = captions_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{captions_file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = _token_rows(text) if captions_file.name == CAPTION_FILES[1] else _csv_rows(text)
    by_image: dict[str, list[str]] = {}
    skipped, phantom = 0, collections.Counter()
    for number, name, caption in rows:
        problem = None
        if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == "..":
            problem = f"image {name!r} leads outside {image_dir}"  # never read files outside the dataset
        elif not (image_dir / name).is_file():
            if _PHANTOM_ID.fullmatch(name) and (image_dir / name.rsplit(".", 1)[0]).is_file():
                phantom[name] += 1  # the release's own duplicate ids, not the user's mistake
                continue
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
    if phantom and not quiet:
        print(f"note: {captions_file.name}: left out {sum(phantom.values())} captions of "
              f"{', '.join(sorted(phantom))}, an id Flickr8k gives no photo of its own", file=sys.stderr)
    if skipped:
        print(f"skipped {skipped} bad rows of {captions_file}", file=sys.stderr)
    if not by_image:
        raise UsageError(f"{captions_file} has no captions")
    split_of, scored_split = _splits(root, by_image)
    names = {split: sorted(n for n in by_image if split_of[n] == split) for split in SPLITS}
    if scored_split != "test":
        if not quiet:
            print(f"note: {root} has no {SPLIT_LISTS['test']}: the dev split ({len(names['validation'])} images) "
                  "is scored as the test split; its figures are dev figures", file=sys.stderr)
        names["test"] = names["validation"]
    for split in SPLITS:
        if not names[split]:
            raise UsageError(f"{root}: the {split} split has no images")
    check_image_files(image_dir / n for n in by_image if split_of[n] in SPLITS)
    return CaptionsFolder(image_dir, names, {s: [by_image[n] for n in names[s]] for s in SPLITS}, skipped,
                          scored_split)


_PHANTOM_ID = re.compile(r".+\.(jpg|jpeg|png)\.\d+", re.IGNORECASE)


def _csv_rows(text: str):
    """(row number, image name, caption) of captions.txt; its header and blank rows left out."""
    for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["image", "caption"]:
            continue
        if row and any(cell.strip() for cell in row):
            yield number, row[0].strip(), ",".join(row[1:]).strip()


def _token_rows(text: str):
    """(line number, image name, caption) of Flickr8k.token.txt: ``NAME#N<TAB>caption``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            key, _, caption = line.partition("\t")
            yield number, key.strip().rsplit("#", 1)[0], caption.strip()


def _splits(root: pathlib.Path, by_image) -> tuple[dict[str, str], str]:
    """Each image's split, and the split scored as "test"."""
    lists = {split: root / file for split, file in SPLIT_LISTS.items() if (root / file).is_file()}
    if "train" not in lists:
        return {n: hash_split(n) for n in by_image}, "test"
    split_of = {}
    for split, file in lists.items():
        for line in file.read_text().split():
            split_of[line.strip()] = split
    scored = "test" if "test" in lists else "dev"
    return {n: split_of.get(n, "unused") for n in by_image}, scored
