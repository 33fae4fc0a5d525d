"""``folder:PATH`` for segmentation: images and label PNGs in CamVid's layout.

Read and checked once, in full, before training: every image is paired with its
label, both decoded, their sizes compared and every label value or colour looked
up in the class list, so a bad file is named before any step runs. Images and
masks are then resized to the model's size and held in memory as uint8.

Example::

    arrays = read_folder(pathlib.Path("data/camvid"), config, size_of, void=255)
    images, masks = arrays["train"]        # [N, H, W, 3] uint8, [N, H, W] uint8 (255 = void)
    arrays["info"]["class_names"]          # ["Sky", "Building", ...] (void left out)
"""

from __future__ import annotations

import collections
import concurrent.futures
import pathlib

import numpy as np

from kerasapps.api import (GROUP_PATTERN, SPLITS, UsageError, check_image_file, group_of, list_image_files,
                           split_by_group, split_by_hash, split_folders)

SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation", "valid"), "test": ("test",)}  # and .txt lists
LABEL_FOLDER_SUFFIXES = ("annot", "_labels", "_masks", "_annot", "_label")
LABEL_STEM_SUFFIXES = ("", "_L", "_label", "_mask")
# Colours of classes when no class list gives them (CamVid's first ones, then more).
DEFAULT_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192), (230, 25, 75),
    (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
)


def _label_for(image: pathlib.Path, label_dir: pathlib.Path) -> pathlib.Path:
    for suffix in LABEL_STEM_SUFFIXES:
        candidate = label_dir / f"{image.stem}{suffix}.png"
        if candidate.is_file():
            return candidate
    raise UsageError(f"{image}: no label file {label_dir / (image.stem + '.png')} "
                     "(labels pair with images by file name)")


def _label_folder(root: pathlib.Path, name: str) -> pathlib.Path:
    for suffix in LABEL_FOLDER_SUFFIXES:
        if (root / f"{name}{suffix}").is_dir():
            return root / f"{name}{suffix}"
    raise UsageError(f"{root / name}: no label folder beside it ({name}annot/ or {name}_labels/)")


def _resolve(root: pathlib.Path, text: str, list_file) -> pathlib.Path:
    """A path from a split list: as given, relative to PATH, or with leading folders dropped
    (CamVid's lists hold /SegNet/CamVid/train/x.png)."""
    path = pathlib.Path(text)
    if path.is_absolute() and path.is_file():
        return path
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for start in range(len(parts)):
        candidate = root.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    raise UsageError(f"{list_file}: {text} not found under {root}")


def find_pairs(root: pathlib.Path, quiet: bool = False, holdout_groups=(), group_pattern: str = GROUP_PATTERN,
               train_on_validation: bool = False) -> dict[str, list[tuple[pathlib.Path, pathlib.Path]]]:
    """(image, label) file pairs per split, from split lists, split folders or images/ + labels/.

    With ``holdout_groups`` the train and validation splits found are pooled and split by whole
    groups of image file names (:func:`kerasapps.api.split_by_group` of the name without its
    suffix, ``group_pattern``): the named groups validate, all others train; test is untouched.
    With ``train_on_validation`` the validation pairs are trained on too (a final model, once the
    settings are chosen); validation is still scored, on frames trained on."""
    if holdout_groups and train_on_validation:
        raise UsageError("train_on_validation trains on the held-out groups too; choose holdout_groups (to choose "
                         "settings) or train_on_validation (the final model), not both")
    pairs: dict[str, list] = {}
    lists = {split: next((root / f"{n}.txt" for n in names if (root / f"{n}.txt").is_file()), None)
             for split, names in SPLIT_FOLDERS.items()}
    folders = split_folders(root)
    if lists["train"]:
        for split, list_file in lists.items():
            if list_file is None:
                continue
            pairs[split] = []
            for number, line in enumerate(list_file.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 2:
                    raise UsageError(f"{list_file}:{number}: expected 'image label', got {line!r}")
                pairs[split].append((_resolve(root, fields[0], list_file), _resolve(root, fields[1], list_file)))
    elif "train" in folders:
        for split, folder in folders.items():
            labels = _label_folder(root, folder.name)
            pairs[split] = [(image, _label_for(image, labels)) for image in list_image_files(folder)]
    elif (root / "images").is_dir():
        labels = next((root / n for n in ("labels", "masks", "annotations") if (root / n).is_dir()), None)
        if labels is None:
            raise UsageError(f"{root}/images has no sibling labels/ (or masks/, annotations/) folder")
        pairs = split_by_hash([(image, _label_for(image, labels)) for image in list_image_files(root / "images")],
                              lambda pair: pair[0].name)
    else:
        raise UsageError(f"{root}: no train/ folder, train.txt list or images/ folder "
                         "(see `kerasapps info segmentation` for the layout)")
    if holdout_groups:
        pooled = pairs["train"] + pairs.get("validation", [])
        pairs["train"], pairs["validation"] = split_by_group(pooled, lambda pair: pair[0].stem, holdout_groups,
                                                             group_pattern, "holdout_groups")
        if not quiet:
            print(_holdout_note(pairs, pooled, group_pattern))
    if "validation" not in pairs:  # carve 10% of train, stably by file name
        pairs.update(split_by_hash(pairs["train"], lambda pair: pair[0].name, (("train", 0.9), ("validation", 0.1))))
    if train_on_validation:
        pairs["train"] = pairs["train"] + pairs["validation"]
        if not quiet:
            print(f"note: train_on_validation: training on train and val ({len(pairs['train'])} images); val "
                  f"({len(pairs['validation'])}) is scored on images trained on")
    if "test" not in pairs:
        if not quiet:
            print(f"note: {root} has no test split; the validation split is used as the test split")
        pairs["test"] = pairs["validation"]
    for split in SPLITS:
        if not pairs.get(split):
            raise UsageError(f"{root}: the {split} split has no images")
    return pairs


def _holdout_note(pairs, pooled, group_pattern) -> str:
    def groups(items):
        counts = collections.Counter(group_of(image.stem, group_pattern) for image, _ in items)
        return ", ".join(f"{group} ({count})" for group, count in sorted(counts.items()))

    return (f"note: holdout_groups: validation {len(pairs['validation'])} images of {groups(pairs['validation'])}; "
            f"training {len(pairs['train'])} images of {groups(pairs['train'])} (train and val splits pooled, "
            f"{len(pooled)} images)")


def read_class_list(path: pathlib.Path) -> tuple[list[str], list[list[int]]]:
    """``name,r,g,b`` per line (a header line is skipped), in class-id order."""
    names, colours = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = [f.strip() for f in line.replace("\t", ",").split(",")]
        if not line.strip():
            continue
        try:
            colour = [int(v) for v in fields[1:4]]
            if len(fields) != 4 or not all(0 <= v <= 255 for v in colour):
                raise ValueError
        except ValueError:
            if number == 1 and not names:
                continue  # header
            raise UsageError(f"{path}:{number}: expected 'name,r,g,b' (0-255), got {line!r}") from None
        names.append(fields[0])
        colours.append(colour)
    if not names:
        raise UsageError(f"{path}: no classes")
    return names, colours


def _decode(path, what):
    import tensorflow as tf

    data = check_image_file(path)
    try:
        return tf.io.decode_image(data, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError:
        raise UsageError(f"{path}: the {what} could not be decoded (truncated or corrupt file?)") from None


def _read_pair(image_path, label_path, colour_keys):
    """Decode one pair, check sizes, return (image uint8 [h, w, 3], raw class ids uint16 [h, w])."""
    image = _decode(image_path, "image")
    label = _decode(label_path, "label")
    if image.shape[:2] != label.shape[:2]:
        raise UsageError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its image {image_path} "
                         f"is {image.shape[1]}x{image.shape[0]}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[..., :3]
    if label.shape[2] <= 2:  # grey (+ alpha): the values are class ids
        return image, label[..., 0].astype(np.uint16)
    if colour_keys is None:
        raise UsageError(f"{label_path} is a colour label: colour labels need a class list with colours "
                         "(PATH/class_dict.csv or --set classes_file=FILE: 'name,r,g,b' per line)")
    rgb = label[..., :3].astype(np.int64)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    order = np.argsort(colour_keys)
    sorted_keys = np.asarray(colour_keys)[order]
    position = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    found = sorted_keys[position] == keys
    if not found.all():
        bad = sorted({tuple(int(v) for v in rgb[y, x]) for y, x in zip(*np.nonzero(~found))})[:5]
        raise UsageError(f"{label_path}: colours not in the class list: {', '.join(map(str, bad))}")
    return image, order[position].astype(np.uint16)


def _class_list(root: pathlib.Path, config):
    """(file, names, colours, colour keys) of the class list; names None when there is none."""
    classes_file = pathlib.Path(config.classes_file) if config.classes_file else root / "class_dict.csv"
    if config.classes_file and not classes_file.is_file():
        raise UsageError(f"classes_file {classes_file} not found")
    names, colours = read_class_list(classes_file) if classes_file.is_file() else (None, None)
    colour_keys = [(r << 16) | (g << 8) | b for r, g, b in colours] if colours else None
    return classes_file, names, colours, colour_keys


def read_folder(root: pathlib.Path, config, size_of, void: int) -> dict:
    """Arrays per split and the task info (class names, colours, image size); see the module doc."""
    import tensorflow as tf

    pairs = find_pairs(root, holdout_groups=config.holdout_groups, group_pattern=config.group_pattern,
                       train_on_validation=config.train_on_validation)
    classes_file, names, colours, colour_keys = _class_list(root, config)
    unique = {pair for split in SPLITS for pair in pairs[split]}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        decoded = dict(zip(unique, pool.map(lambda p: _read_pair(*p, colour_keys), unique)))
    first_image = decoded[pairs["train"][0]][0]
    size = size_of(config, first_image.shape[:2])
    largest = max(int(ids.max()) for _, ids in decoded.values())
    if names is None:
        names = [f"class_{i}" for i in range(largest + 1)]
        colours = [list(DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)]) for i in range(largest + 1)]
    elif largest >= len(names):
        label = next(p[1] for p, (_, ids) in decoded.items() if ids.max() >= len(names))
        raise UsageError(f"{label}: label values up to {largest} but the class list {classes_file} has "
                         f"{len(names)} classes")
    void_names = {n.lower() for n in config.void_names}
    kept = [i for i, n in enumerate(names) if n.lower() not in void_names]
    remap = np.full(65536, void, np.uint8)
    remap[kept] = np.arange(len(kept))

    def resize(pair):
        image, ids = decoded[pair]
        image = tf.image.resize(image, size, antialias=True)
        mask = tf.image.resize(remap[ids][..., None], size, method="nearest")[..., 0]
        return np.round(np.clip(image.numpy(), 0, 255)).astype(np.uint8), mask.numpy()

    out = {}
    for split in SPLITS:
        resized = [resize(pair) for pair in pairs[split]]
        out[split] = (np.stack([r[0] for r in resized]), np.stack([r[1] for r in resized]))
    out["info"] = {"class_names": [names[i] for i in kept], "colours": [list(colours[i]) for i in kept],
                   "image_size": size, "void_names": [names[i] for i in range(len(names)) if i not in kept],
                   "label_ids": kept,
                   # find_pairs scores the validation list itself where the folder has no test split
                   "scored_split": "validation" if pairs["test"] is pairs["validation"] else "test"}
    return out


def read_native(root: pathlib.Path, config, split: str, label_ids: list[int], void: int):
    """The split as a client holds it: ``(encoded image bytes, mask at the label's own size)`` per
    pair, the mask in class ids (``label_ids[c]`` in the label file is class ``c``; others: ``void``)."""
    _, _, _, colour_keys = _class_list(root, config)
    remap = np.full(65536, void, np.uint8)
    remap[label_ids] = np.arange(len(label_ids))
    pairs = find_pairs(root, quiet=True, holdout_groups=config.holdout_groups, group_pattern=config.group_pattern,
                       train_on_validation=config.train_on_validation)
    for image_path, label_path in pairs[split]:
        _, ids = _read_pair(image_path, label_path, colour_keys)
        yield image_path.read_bytes(), remap[ids]
