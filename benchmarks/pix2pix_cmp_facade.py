"""pix2pix on the CMP facade base set (label map -> photo, the paper's facades direction).

    python -m benchmarks.pix2pix_cmp_facade [--image-size 256] [--epochs 200] [--batch-size 1]

Reads ../shared/data/cmp_facade (378 palette label PNGs + JPG photos of varying sizes) in
place through `folder:`, with the loader's fixed split: the core's ``hash_split`` of each
file stem, 80/10/10 (train / validation / test; the counts are printed). The paper trains
on 400 facades (base + extended set) at 256x256, batch 1, 200 epochs; with a GPU this
script defaults to that size and width, without one to a bounded CPU run (64x64, half
width, 20 epochs, batch 4). It reports held-out L1 / PSNR / SSIM beside the identity
(label map as output) and untrained-generator baselines, and where the grids are.
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cmp_facade"


def main():
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=256 if gpu else 64)
    parser.add_argument("--filters", type=int, default=64 if gpu else 32, help="64 in the paper")
    parser.add_argument("--epochs", type=int, default=200 if gpu else 20)
    parser.add_argument("--batch-size", type=int, default=1 if gpu else 4, help="1 in the paper")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if not pathlib.Path(args.data, "base").is_dir():
        print(f"skipped: {args.data} not found")
        return
    from kerasapps_pix2pix.data import find_pairs

    _, pairs = find_pairs(pathlib.Path(args.data))
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="pix2pix-cmp-"))
    command = [sys.executable, "-m", "kerasapps", "run", "pix2pix", "--dataset", f"folder:{args.data}",
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--set", f"image_size={args.image_size}", "--set", f"generator_filters={args.filters}",
               "--set", f"discriminator_filters={args.filters}", "--set", "grid_examples=6",
               "--workdir", str(work / "run"), "--export-dir", str(work / "models"), "--samples", "3"]
    metrics, wall = run_and_read(command, work / "run")
    test = metrics["metrics"]
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join(command[1:])}")
    print("split (hash of file stem): " + ", ".join(f"{s} {len(p)}" for s, p in pairs.items()))
    print(f"CMP facades label -> photo, {args.epochs} epochs at {args.image_size}x{args.image_size}, "
          f"{metrics['train_examples_per_second']:.1f} train examples/s, wall {wall:.0f} s")
    print(f"{'test split':<28} {'L1':>7} {'PSNR dB':>8} {'SSIM':>7}")
    for prefix, name in (("", "pix2pix"), ("identity_", "identity (label map as photo)"),
                         ("untrained_", "generator before training")):
        print(f"{name:<28} {test[prefix + 'l1']:7.4f} {test[prefix + 'psnr']:8.2f} {test[prefix + 'ssim']:7.4f}")
    grids = sorted((work / "run" / "progress").glob("epoch_*.png"))
    print(f"grids (input | target | output): {grids[0]} ... {grids[-1]}")
    print(f"samples: {work / 'run' / 'samples'}")


if __name__ == "__main__":
    main()
