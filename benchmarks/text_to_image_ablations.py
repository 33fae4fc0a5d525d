"""Does each piece of the text-to-image GAN matter? Conditioning augmentation and the
mismatched-text term, each switched off, beside the full model and the shuffled-caption
baseline (a generator that ignores the text), all judged on the same held-out captions.

    python -m benchmarks.text_to_image_ablations [--epochs 12] [--variants full,no_ca,no_mismatch]
        [--set KEY=VALUE ...] [--out DIR]

Each variant is a real `kerasapps run text-to-image` with the task's defaults (same seed,
data, judge) and one switch changed. The shuffled-caption baseline comes with every run
(`shuffled_semantic_accuracy`: generated images checked against shuffled captions).
Runs are sequential: on 2 CPU cores, running them side by side only slows each one.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

VARIANTS = {
    "full": [],
    "no_ca": ["--set", "conditioning_augmentation=false"],
    "no_mismatch": ["--set", "mismatched_text=false"],
}
COLUMNS = ("semantic_accuracy", "all_facts_accuracy", "colour_accuracy", "shape_accuracy", "position_accuracy",
           "shuffled_semantic_accuracy", "real_semantic_accuracy", "diversity", "distinct_draws",
           "frechet_judge_distance")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=None, help="default: the task's")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every variant")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a new temporary one)")
    args = parser.parse_args()
    work = pathlib.Path(args.out or tempfile.mkdtemp(prefix="t2i-ablations-"))
    results = {}
    for name in args.variants.split(","):
        command = [sys.executable, "-m", "kerasapps", "run", "text-to-image", "--workdir", str(work / name),
                   "--export-dir", str(work / "saved_models"), "--samples", "1", *VARIANTS[name]]
        if args.epochs:
            command += ["--epochs", str(args.epochs)]
        for pair in args.overrides:
            command += ["--set", pair]
        metrics, wall = run_and_read(command, work / name, stdout=subprocess.DEVNULL)
        results[name] = {"wall_seconds": round(wall, 1), **{k: metrics["metrics"][k] for k in COLUMNS}}
        print(f"{name}: {' '.join(command[1:])}", flush=True)
    print(f"machine: {describe_machine()}")
    print(f"{'variant':<12}" + "".join(f"{c.replace('_accuracy', ''):>14.14}" for c in COLUMNS) + f"{'wall s':>8}")
    for name, row in results.items():
        print(f"{name:<12}" + "".join(f"{row[c]:>14.3f}" for c in COLUMNS) + f"{row['wall_seconds']:>8.0f}")
    (work / "ablations.json").write_text(json.dumps(results, indent=2))
    print(f"runs under {work}: each variant's samples/grid.png and progress/epoch_*.png")


if __name__ == "__main__":
    main()
