"""GNMT-style attention LSTM on Multi30k German-to-English through `folder:`, beside a published figure.

    python -m benchmarks.multi30k_translation [--epochs 12] [--units 512] [--embed-dim 256] [--batch-size 128]

Reads ../shared/data/multi30k/task1/raw (train/val/test_2016_flickr .de.gz/.en.gz, the
upstream files unchanged) in place; skips cleanly when it is absent. Trains on train
(29,000 pairs), picks the best epoch on val (1,014), and reports corpus BLEU (sacreBLEU's
figure on lower-cased, punctuation-split tokens, one reference) and exact match on
test2016 (1,000 pairs).

Published for comparison: an attention RNN of Bahdanau et al.'s kind (bidirectional GRU
encoder, additive attention, about 20M parameters) trained on Multi30k de-en scores
BLEU 28.3 on test2016. Tokenisation differs (that figure uses spaCy tokens), so the two
figures are close but not strictly comparable.
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k" / "task1" / "raw"
PUBLISHED_BLEU = 28.3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder LSTM layers")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--attention", default="bahdanau", choices=("bahdanau", "luong", "none"))
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="for a shortened run")
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    if not pathlib.Path(args.data, "train.de.gz").is_file():
        print(f"skipped: {args.data} not found")
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix="multi30k-translation-"))
    command = [sys.executable, "-m", "kerasapps", "run", "translation", "--dataset", f"folder:{args.data}",
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--set", "source=de", "--set", "target=en", "--set", "folder_splits=train,val,test_2016_flickr",
               "--set", f"units={args.units}", "--set", f"embed_dim={args.embed_dim}",
               "--set", f"encoder_layers={args.layers}", "--set", f"decoder_layers={args.layers}",
               "--set", f"attention={args.attention}", "--set", "dropout=0.3", "--set", "min_word_count=2",
               "--set", f"beam_size={args.beam_size}", "--set", "learning_rate=1e-3",
               "--workdir", str(work / "run"), "--export-dir", str(work / "models"), "--samples", "5"]
    if args.steps_per_epoch:
        command += ["--steps-per-epoch", str(args.steps_per_epoch)]
    metrics, wall = run_and_read(command, work / "run")
    test = metrics["metrics"]
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join(command[1:])}")
    print(f"Multi30k de-en, {metrics.get('epochs_completed')} epochs, "
          f"{metrics.get('train_examples_per_second')} train examples/s, wall {wall:.0f} s")
    print(f"{'metric':<24} {'measured':>9} {'published':>9}")
    print(f"{'BLEU test2016 (0-100)':<24} {test['bleu']:>9.1f} {PUBLISHED_BLEU:>9.1f}")
    print(f"{'exact match test2016':<24} {100 * test['exact_match']:>8.1f}% {'-':>9}")
    print(f"workdir: {work / 'run'}")


if __name__ == "__main__":
    main()
