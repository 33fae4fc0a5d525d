"""Multi30k German-to-English through `folder:`, scored the way a user's client sees it.

    python -m benchmarks.multi30k_translation              # the CPU recipe: <= 60 min wall on 2 cores
    python -m benchmarks.multi30k_translation --full       # the accelerator recipe (epochs, not minutes)
    python -m benchmarks.multi30k_translation --minutes 5 --epochs 1   # a short look

The settings are the translation plugin's recipes (kerasapps_translation/recipes/):
``multi30k`` (``kerasapps run translation --recipe multi30k``) and, with ``--full``,
``multi30k-accelerator``; each option given overrides the recipe's value.
Reads ../shared/data/multi30k/task1/raw (train/val/test_2016_flickr .de.gz/.en.gz, the
upstream files unchanged) in place; skips cleanly when it is absent. Trains with
``kerasapps run translation`` (cased words, length-bucketed batches, the validation
split's greedy BLEU logged after every epoch as a learning curve, training stopped by a
wall-clock budget), keeps the epoch with the best validation loss, exports it, then, in a
fresh process that imports only TensorFlow, feeds the raw German test2016 lines to the
SavedModel's ``serving_default`` and scores its detokenised, cased output with sacreBLEU
(default 13a tokenisation) against the raw English reference file.

Published for comparison: an attention RNN of Bahdanau et al.'s kind (bidirectional GRU
encoder, additive attention, about 20M parameters) trained on Multi30k de-en scores
BLEU 28.3 on test2016 (spaCy tokens, lower-cased: not strictly comparable).
"""

import argparse
import csv
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k" / "task1" / "raw"
PUBLISHED_BLEU = 28.3
# The CPU recipe (measured) and the accelerator recipe (--full; settings only, not run on 2 cores).
CPU_RECIPE, FULL_RECIPE = "multi30k", "multi30k-accelerator"
# Each option of this script and the recipe fields it overrides.
OPTIONS = {"minutes": ("train_minutes",), "epochs": ("epochs",), "units": ("units",), "embed_dim": ("embed_dim",),
           "layers": ("encoder_layers", "decoder_layers"), "batch_size": ("batch_size",),
           "learning_rate": ("learning_rate",), "dropout": ("dropout",), "min_word_count": ("min_word_count",),
           "length_buckets": ("length_buckets",), "beam_size": ("beam_size",)}

CLIENT = """
import sys, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for start in range(0, len(lines), 64):
        for text in serve(text=tf.constant(lines[start:start + 64]))["translation"].numpy():
            out.write(text.decode("utf-8") + "\\n")
"""


def recipe_command(args, data: pathlib.Path, work: pathlib.Path) -> list[str]:
    """``kerasapps run translation --recipe RECIPE`` on ``data``, each option given as an override."""
    command = [sys.executable, "-m", "kerasapps", "run", "translation", "--recipe", args.recipe,
               "--dataset", f"folder:{data}", "--workdir", str(work / "run"), "--export-dir", str(work / "models"),
               "--samples", "5"]
    for option, keys in OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            command += [arg for key in keys for arg in ("--set", f"{key}={value}")]
    if args.steps_per_epoch:
        command += ["--steps-per-epoch", str(args.steps_per_epoch)]
    return command


def client_bleu(export: pathlib.Path, data: pathlib.Path, work: pathlib.Path) -> tuple[float, str]:
    """sacreBLEU (13a, cased) of the SavedModel's served translations of raw test2016 German."""
    import sacrebleu

    source = work / "test_2016_flickr.de"
    source.write_text(gzip.open(data / "test_2016_flickr.de.gz", "rt", encoding="utf-8").read(), encoding="utf-8")
    hypotheses_file = work / "test_2016_flickr.hyp.en"
    subprocess.run([sys.executable, "-c", CLIENT, str(export), str(source), str(hypotheses_file)], check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    hypotheses = hypotheses_file.read_text(encoding="utf-8").splitlines()
    references = gzip.open(data / "test_2016_flickr.en.gz", "rt", encoding="utf-8").read().splitlines()
    metric = sacrebleu.BLEU()  # defaults: 13a tokenisation, cased
    bleu = metric.corpus_score(hypotheses, [references])
    return bleu.score, f"{bleu} ({metric.get_signature()})"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multi30k_translation",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the accelerator recipe (not run on 2 cores)")
    parser.add_argument("--minutes", type=float, help="training wall-clock budget (0 = none); default: the recipe's")
    for name in ("epochs", "units", "embed-dim", "layers", "batch-size", "min-word-count", "length-buckets",
                 "beam-size"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--steps-per-epoch", type=int, help="for a shortened run")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--work", help="working folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    args.recipe = FULL_RECIPE if args.full else CPU_RECIPE
    data = pathlib.Path(args.data)
    if not (data / "train.de.gz").is_file():
        print(f"skipped: {data} not found (Multi30k task1/raw)")
        return
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="multi30k-translation-"))
    work.mkdir(parents=True, exist_ok=True)
    command = recipe_command(args, data, work)
    load_before = os.getloadavg()
    start = time.perf_counter()
    subprocess.run(command, check=True)
    train_wall = time.perf_counter() - start
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    bleu, signature = client_bleu(work / "models" / "translation" / "1", data, work)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()

    from benchmarks.machine import describe_machine

    print(f"machine: {describe_machine()}")
    print(f"load average (1/5/15 min) at start {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
          f"at end {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} (above 2: the cores were shared)")
    print(f"command: {' '.join(command[1:])}")
    print(f"Multi30k de-en: {metrics.get('epochs_completed')} epochs, kerasapps run {train_wall / 60:.1f} min, "
          f"with the client's scoring {wall / 60:.1f} min wall")
    with open(work / "run" / "validation_bleu.csv") as f:
        print("learning curve (val greedy BLEU on cased tokens, minutes since training began):")
        for row in csv.DictReader(f):
            print(f"  epoch {row['epoch']:>3}  {int(row['seconds']) / 60:6.1f} min  val BLEU {float(row['val_bleu']):5.2f}")
    test = metrics["metrics"]
    print(f"task's test2016 BLEU (beam {metrics['config']['params']['beam_size']}, cased tokens): {test['bleu']:.2f}")
    print(f"client's test2016 sacreBLEU (detokenised, cased, 13a vs the raw reference): {bleu:.2f} "
          f"(published attention RNN: {PUBLISHED_BLEU})")
    print(f"  {signature}")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
