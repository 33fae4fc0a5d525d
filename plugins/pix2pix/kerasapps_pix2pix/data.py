"""``folder:PATH`` for pix2pix: paired images in one of three layouts, read and checked up front.

1. **A|B side by side** (the pix2pix release: facades, maps, edges2shoes): each
   file holds A on the left half and B on the right, width = 2 x height.
   Split folders ``PATH/train``, ``PATH/val`` (or ``validation``), ``PATH/test``,
   or image files directly in PATH.
2. **A/ and B/ folders**: ``PATH/A/x.png`` pairs with ``PATH/B/x.jpg`` (same file
   name up to the suffix), optionally with ``train/``, ``val/``, ``test/`` inside
   both (pix2pix's ``combine_A_and_B.py`` layout).
3. **CMP facades** as distributed (``cmp_bNNNN.png`` palette label maps beside
   ``cmp_bNNNN.jpg`` photos, in PATH or PATH/base): A = the label map rendered
   to RGB through its own palette, B = the photo; images of any size.

Without split folders, pairs are split 80/10/10 by file name with the core's
``hash_split`` (stable across machines). No test split: the validation split
is used. Every image is resized to the model's square size (as the pix2pix
release does for facades); grey images are repeated to RGB and the alpha of
RGBA files is dropped (a conversion, not an error). A file that is no image or
cannot be decoded, an A|B file whose width is not twice its height, and A/B
names without a partner stop the run with a message naming the file.

Example::

    arrays = read_folder(pathlib.Path("data/facades"), image_size=64)
    inputs, targets = arrays["train"]   # uint8 [N, 64, 64, 3] each: A, B
    arrays["layout"]                    # "A|B side by side"
"""

from __future__ import annotations

import concurrent.futures
import pathlib

import numpy as np

from kerasapps.api import SPLITS, UsageError, check_image_file, hash_split, list_image_files, split_by_hash, split_folders

LAYOUT_HELP = "see `kerasapps info pix2pix` for the folder layouts"


def _side_by_side_files(root: pathlib.Path) -> dict[str, list]:
    folders = split_folders(root)
    if folders:
        return {split: [(path, None) for path in list_image_files(folder)] for split, folder in folders.items()}
    return split_by_hash([(path, None) for path in list_image_files(root)], lambda pair: pair[0].name)


def _match_by_stem(a_dir: pathlib.Path, b_dir: pathlib.Path) -> list[tuple[pathlib.Path, pathlib.Path]]:
    a_files = {p.stem: p for p in list_image_files(a_dir)}
    b_files = {p.stem: p for p in list_image_files(b_dir)}
    unmatched = sorted(set(a_files) ^ set(b_files))
    if unmatched:
        where = [str(a_files.get(s) or b_files[s]) for s in unmatched[:3]]
        raise UsageError(f"{len(unmatched)} image(s) in {a_dir} and {b_dir} have no partner of the same name, "
                         f"e.g. {', '.join(where)} (A/ and B/ pair files by name)")
    return [(a_files[s], b_files[s]) for s in sorted(a_files)]


def _a_b_folder_pairs(root: pathlib.Path) -> dict[str, list]:
    a_splits, b_splits = split_folders(root / "A"), split_folders(root / "B")
    if a_splits or b_splits:
        if set(a_splits) != set(b_splits):
            raise UsageError(f"{root}/A and {root}/B must hold the same split folders "
                             f"(A: {', '.join(p.name for p in a_splits.values()) or 'none'}; "
                             f"B: {', '.join(p.name for p in b_splits.values()) or 'none'})")
        return {split: _match_by_stem(a_splits[split], b_splits[split]) for split in a_splits}
    return split_by_hash(_match_by_stem(root / "A", root / "B"), lambda pair: pair[0].name)


def _cmp_facade_pairs(folder: pathlib.Path) -> dict[str, list]:
    labels = sorted(folder.glob("cmp_*.png"))
    pairs = []
    for label in labels:
        photo = label.with_suffix(".jpg")
        if not photo.is_file():
            raise UsageError(f"{label}: no photo {photo.name} beside it (CMP facades pair NAME.png with NAME.jpg)")
        pairs.append((label, photo))
    photos = {p.stem for p in folder.glob("cmp_*.jpg")} - {p.stem for p in labels}
    if photos:
        raise UsageError(f"{folder / (sorted(photos)[0] + '.jpg')}: no label map of the same name (NAME.png)")
    return split_by_hash(pairs, lambda pair: pair[0].stem)


def find_pairs(root: pathlib.Path) -> tuple[str, dict[str, list]]:
    """The layout's name and ``{split: [(a_path, b_path or None for A|B files)]}``."""
    cmp_folder = next((f for f in (root / "base", root) if any(f.glob("cmp_*.png"))), None) if root.is_dir() else None
    if cmp_folder is not None:
        layout, pairs = "CMP facades", _cmp_facade_pairs(cmp_folder)
    elif (root / "A").is_dir() or (root / "B").is_dir():
        if not ((root / "A").is_dir() and (root / "B").is_dir()):
            raise UsageError(f"{root}: an A/ folder needs a B/ folder beside it (and the reverse)")
        layout, pairs = "A/ and B/ folders", _a_b_folder_pairs(root)
    else:
        layout, pairs = "A|B side by side", _side_by_side_files(root)
    if not pairs.get("train"):
        raise UsageError(f"{root}: no training images found in the {layout} layout ({LAYOUT_HELP})")
    if not pairs.get("validation"):  # carve 10% of train, stably by file name
        train = pairs["train"]
        pairs["train"] = [p for p in train if hash_split(p[0].name, (("train", 0.9), ("validation", 0.1))) == "train"]
        pairs["validation"] = [p for p in train if p not in pairs["train"]]
    if not pairs.get("test"):
        print(f"note: {root} has no test split; the validation split is used as the test split")
        pairs["test"] = pairs["validation"]
    for split in SPLITS:
        if not pairs[split]:
            raise UsageError(f"{root}: the {split} split has no images (add more pairs; {LAYOUT_HELP})")
    return layout, pairs


def decode_rgb(path) -> np.ndarray:
    """A file's pixels as uint8 RGB ``[H, W, 3]``: palette PNGs through their palette, grey
    repeated, alpha dropped. UsageError naming the file if it is no image or corrupt."""
    import tensorflow as tf

    data = check_image_file(path)
    try:
        return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError:
        raise UsageError(f"{path} could not be decoded (truncated or corrupt image file?)") from None


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import tensorflow as tf

    resized = tf.image.resize(image, (size, size), antialias=True)
    return np.round(np.clip(resized.numpy(), 0, 255)).astype(np.uint8)


def read_pair(a_path, b_path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) uint8 ``[size, size, 3]`` from an A|B file (``b_path`` None) or two files."""
    if b_path is None:
        both = decode_rgb(a_path)
        height, width = both.shape[:2]
        if width != 2 * height:
            raise UsageError(f"{a_path} is {width}x{height}: an A|B side-by-side image must be twice as wide "
                             f"as it is high (A left, B right; {LAYOUT_HELP})")
        return _resize(both[:, :height], size), _resize(both[:, height:], size)
    return _resize(decode_rgb(a_path), size), _resize(decode_rgb(b_path), size)


def read_folder(root: pathlib.Path, image_size: int) -> dict:
    """``{split: (A uint8 [N, S, S, 3], B uint8 [N, S, S, 3])}`` plus ``"layout"``: see the module doc."""
    layout, pairs = find_pairs(root)
    unique = sorted({pair for split in SPLITS for pair in pairs[split]}, key=str)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        decoded = dict(zip(unique, pool.map(lambda pair: read_pair(*pair, image_size), unique)))
    # find_pairs scores the validation list itself where the folder has no test split
    out: dict = {"layout": layout, "scored_split": "validation" if pairs["test"] is pairs["validation"] else "test"}
    for split in SPLITS:
        images = [decoded[pair] for pair in pairs[split]]
        out[split] = (np.stack([a for a, _ in images]), np.stack([b for _, b in images]))
    return out
