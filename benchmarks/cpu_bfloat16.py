"""Training speed on this CPU in float32 against mixed_bfloat16, for the tasks that allow bfloat16.

``--precision auto`` trains a task that sets ``cpu_bfloat16 = True`` in mixed_bfloat16 on a CPU
with bfloat16 instructions (AMX or AVX512_BF16). This measures what that buys here: each task's
model on ``shapes``, ``kerasapps train`` at both precisions, taking turns (float32, bfloat16,
bfloat16, float32) so that other work on the machine weighs on both alike. Each figure is the
run's steady train examples/s (its first epoch, which traces the graph, left out).

    python -m benchmarks.cpu_bfloat16                       # every row
    python -m benchmarks.cpu_bfloat16 --rows segnet_basic_192 --rounds 1
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

# name -> (task, options): each task's default model on shapes, and SegNet-Basic at a larger size. Few
# generated examples and small validation splits: only the training steps are timed.
SMALL = ["--set", "train_examples=512", "--set", "eval_examples=32"]
ROWS = {
    "lenet5": ("classification", ["--steps-per-epoch", "8", *SMALL]),
    "resnet20": ("classification", ["--steps-per-epoch", "8", "--set", "model=resnet20", *SMALL]),
    "segnet_basic_64": ("segmentation", ["--steps-per-epoch", "8", *SMALL]),
    "segnet_basic_192": ("segmentation", ["--steps-per-epoch", "8", "--batch-size", "8", "--set", "image_size=192",
                                          *SMALL]),
    "pix2pix": ("pix2pix", ["--steps-per-epoch", "8", *SMALL]),
    "text_to_image": ("text-to-image", ["--steps-per-epoch", "8", *SMALL, "--set", "judge_examples=512"]),
}
PRECISIONS = ("float32", "mixed_bfloat16")


def examples_per_second(task: str, options: list, precision: str, workdir: pathlib.Path) -> float:
    """Steady train examples/s of a 3-epoch ``kerasapps train`` at ``precision``."""
    command = [sys.executable, "-m", "kerasapps", "train", task, "--epochs", "3", "--precision", precision,
               "--workdir", str(workdir), "--fresh", *options]
    metrics, _ = run_and_read(command, workdir, capture_output=True)
    assert metrics["config"]["precision"] == precision, metrics["config"]["precision"]
    return metrics["train_examples_per_second"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--rounds", type=int, default=2, help="float32/bfloat16 pairs per row (in turn)")
    args = parser.parse_args(argv)
    from kerasapps.training.distribute import cpu_has_bf16_instructions

    print(f"machine: {describe_machine()}; bfloat16 instructions: {cpu_has_bf16_instructions()}", flush=True)
    print(f"{'row':<18} {'float32 ex/s':>16} {'bfloat16 ex/s':>16} {'ratio':>6}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="cpu-bfloat16-") as scratch:
        for name in args.rows.split(","):
            task, options = ROWS[name]
            speeds = {p: [] for p in PRECISIONS}
            for round_ in range(args.rounds):
                for precision in PRECISIONS if round_ % 2 == 0 else PRECISIONS[::-1]:
                    workdir = pathlib.Path(scratch) / f"{name}-{precision}"
                    speeds[precision].append(examples_per_second(task, options, precision, workdir))
            ratio = sum(speeds["mixed_bfloat16"]) / sum(speeds["float32"])
            results[name] = {**speeds, "ratio": round(ratio, 2)}
            print(f"{name:<18} {', '.join(map(str, speeds['float32'])):>16} "
                  f"{', '.join(map(str, speeds['mixed_bfloat16'])):>16} {ratio:>5.2f}x", flush=True)
    return results


if __name__ == "__main__":
    main()
