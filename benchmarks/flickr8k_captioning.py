"""Show and Tell on Flickr8k (or any folder in its layout) through `folder:`, BLEU-1..4 on its test split.

    python -m benchmarks.flickr8k_captioning --data DIR/flickr8k
    python -m benchmarks.flickr8k_captioning --data DIR/flickr8k --encoder-run runs/classification
    python -m benchmarks.flickr8k_captioning --data DIR --tiny      # seconds: checks the recipe runs

Reads ../shared/data/flickr8k by default (``Images/*.jpg`` + ``captions.txt`` with a header
``image,caption``, five captions per image; the split lists ``Flickr_8k.{train,dev,test}Images.txt``
are used when present: 6,000 / 1,000 / 1,000 images) in place; skips cleanly when it is absent.
Trains ``kerasapps run captioning`` on it, each step on all five references of each image,
and reports the task's corpus BLEU-1..4 on the test split against all references of each image.
``--encoder-run`` starts the image encoder from a kerasapps classification run's network
(``--set encoder=classification --set encoder_weights=RUN``), for when ImageNet weights cannot
be downloaded.

Published for comparison (Flickr8k test, BLEU-1 / 2 / 3 / 4, with ImageNet-pretrained encoders:
GoogLeNet, VGG), as tabled by Show, Attend and Tell (Xu et al. 2015, Table 1): Show and Tell
(Vinyals et al. 2015) 63 / 41 / 27 / -, soft attention 67 / 44.8 / 29.9 / 19.5.
"""

import argparse
import pathlib
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"
PUBLISHED = "Show and Tell 63 / 41 / 27 / -; soft attention 67 / 44.8 / 29.9 / 19.5"
# The recipe (settings for a real run; not measured on our machines, which have no Flickr8k copy).
RECIPE = dict(epochs=20, batch_size=64, image_size=128, cnn_filters="32,64,128,256", embed_dim=256, lstm_units=512,
              captions_per_image=5, min_word_count=5, max_caption_length=20, dropout=0.5, beam_size=3)
# --tiny: seconds on 2 cores, for the tests.
TINY = dict(epochs=1, batch_size=8, image_size=32, cnn_filters="8,16", embed_dim=16, lstm_units=16,
            captions_per_image=1, min_word_count=1, max_caption_length=12, dropout=0.0, beam_size=1)


def recipe_command(settings: dict, data: pathlib.Path, work: pathlib.Path, encoder_run=None,
                   freeze_encoder=False) -> list[str]:
    command = [sys.executable, "-m", "kerasapps", "run", "captioning", "--dataset", f"folder:{data}",
               "--epochs", str(settings["epochs"]), "--batch-size", str(settings["batch_size"]),
               "--workdir", str(work / "run"), "--export-dir", str(work / "models"), "--samples", "5"]
    for key, value in settings.items():
        if key not in ("epochs", "batch_size"):
            command += ["--set", f"{key}={value}"]
    if encoder_run:
        command += ["--set", "encoder=classification", "--set", f"encoder_weights={encoder_run}"]
        if freeze_encoder:
            command += ["--set", "freeze_encoder=true", "--set", "cache_features=true"]
    return command


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flickr8k_captioning",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="a folder in Flickr8k's layout (Images/ + captions.txt)")
    parser.add_argument("--tiny", action="store_true", help="a few seconds' settings: checks the recipe runs")
    for name in ("epochs", "batch-size", "image-size", "lstm-units", "embed-dim", "captions-per-image"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--cnn-filters", help="the small CNN's filters per block, e.g. 32,64,128,256")
    parser.add_argument("--encoder-run", help="start the encoder from this kerasapps classification run (folder)")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="with --encoder-run: keep its weights fixed and cache its features")
    parser.add_argument("--work", help="working folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    settings = dict(TINY if args.tiny else RECIPE)
    for key in settings:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    data = pathlib.Path(args.data)
    if not (data / "captions.txt").is_file():
        print(f"skipped: {data} not found (a Flickr8k-style folder: Images/ + captions.txt)")
        return None
    from kerasapps.captions import read_captions_folder

    folder = read_captions_folder(data)  # the layout's errors before any training
    counts = {split: len(names) for split, names in folder.names.items()}
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="flickr8k-captioning-"))
    work.mkdir(parents=True, exist_ok=True)
    command = recipe_command(settings, data, work, args.encoder_run, args.freeze_encoder)
    metrics, wall = run_and_read(command, work / "run")
    test = metrics["metrics"]
    encoder = (f"classification run {args.encoder_run}" + (" (frozen)" if args.freeze_encoder else "")
               if args.encoder_run else "small CNN from scratch")
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join(command[1:])}")
    print(f"{data.name}: {counts['train']} train / {counts['validation']} validation / {counts['test']} test images; "
          f"{metrics['epochs_completed']} epochs at {settings['image_size']}x{settings['image_size']}, encoder: "
          f"{encoder}; {metrics['train_examples_per_second']} train images/s, wall {wall:.0f} s")
    bleu = " / ".join(f"{100 * test[f'bleu{n}']:.1f}" for n in range(1, 5))
    print(f"test BLEU-1 / 2 / 3 / 4 (beam {settings['beam_size']}, all references): {bleu} "
          f"(published on Flickr8k: {PUBLISHED})")
    print(f"test exact match {test['exact_match']:.3f}, token accuracy {test['token_accuracy']:.3f}")
    print(f"workdir: {work / 'run'}")
    return test


if __name__ == "__main__":
    main()
