"""LeNet-5 (the classification default) on real MNIST PNGs through `folder:`.

    python -m benchmarks.mnist_lenet [--epochs N]

Runs the classification plugin's ``mnist`` recipe (kerasapps_classification/recipes/mnist.yaml:
``kerasapps run classification --recipe mnist``); ``--epochs`` overrides its 12.
Reads ../shared/data/mnist_png (train/<digit>/*.png, test/<digit>/*.png) in place; skips
cleanly when it is absent. The seed lecture's figure for LeNet-5 is >= 99.0% test accuracy.
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_png"
RECIPE = "mnist"


def recipe_command(args, work: pathlib.Path) -> list[str]:
    """``kerasapps run classification --recipe mnist`` on ``args.data``, ``--epochs`` where given."""
    command = [sys.executable, "-m", "kerasapps", "run", "classification", "--recipe", RECIPE,
               "--dataset", f"folder:{args.data}", "--workdir", str(work / "run"),
               "--export-dir", str(work / "models"), "--samples", "0"]
    return command + (["--epochs", str(args.epochs)] if args.epochs else [])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args(argv)
    if not pathlib.Path(args.data, "train").is_dir():
        print(f"skipped: {args.data} not found")
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix="mnist-lenet-"))
    command = recipe_command(args, work)
    metrics, wall = run_and_read(command, work / "run")
    epochs = metrics["config"]["params"]["epochs"]
    best_val = max(h["val_accuracy"] for h in metrics["history"])
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join(command[1:])}")
    print(f"MNIST LeNet-5 via folder:, {epochs} epochs: test accuracy {metrics['metrics']['accuracy']:.4f} "
          f"(best val {best_val:.4f}), {metrics['train_examples_per_second']:.0f} train examples/s, "
          f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
