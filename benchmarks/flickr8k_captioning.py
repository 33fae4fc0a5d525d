"""Show and Tell on Flickr8k (folder: layout), scored with the COCO caption evaluation code beside two baselines.

    python -m benchmarks.flickr8k_captioning                     # the recipe: matching run, captioning on its
                                                                 # image encoder, then self-critical fine-tuning
    python -m benchmarks.flickr8k_captioning --scratch           # ablation: the captioner trained from scratch
    python -m benchmarks.flickr8k_captioning --encoder-run RUN   # captioning on a matching/tagging/classification run
    python -m benchmarks.flickr8k_captioning --data DIR --tiny   # seconds: checks the pipeline runs

Reads ../shared/data/flickr8k by default and skips cleanly when it is absent. The settings are
the captioning plugin's recipe files, kerasapps_captioning/recipes/ (flickr8k-matching.yaml,
flickr8k.yaml, flickr8k-self-critical.yaml, flickr8k-tagging.yaml, flickr8k-scratch.yaml:
``--recipe flickr8k`` and so on); the commands they stand for are printed. A copy without
Flickr_8k.testImages.txt is scored on its dev split, and every figure says so.

Scoring, as a client sees the model: the export's ``serving_default`` captions each scored
photo's JPEG bytes; hypotheses and references are tokenised alike (lower-cased, every
character other than a letter, digit, apostrophe or space replaced by a space, split on
whitespace: what ``kerasapps.api.standardize`` does) and scored with pycocoevalcap's Bleu(4)
and Cider (the COCO code's CIDEr is CIDEr-D). The task's own corpus BLEU (metrics.json) is
printed beside it as a cross-check.

Baselines on the same photos and scorer:
- consensus: the one training caption that scores best (CIDEr-D) against the other training
  photos' captions, given for every photo;
- nearest neighbour: the caption of the closest training photo (cosine similarity in the
  trained captioner's encoder output), the one of its five that agrees best with the other four;
- 25-NN consensus (Devlin et al. 2015, a strong retrieval baseline): of the captions of the 25
  closest training photos in that space, the one most like the others.
Each system's ``distinct`` count (different captions over the scored photos) shows whether it
looks at the photo at all.

With ``--matching-export DIR`` (an export of the captioning plugin's ``matching`` task trained on
the same train split), each system also gets two reference-free scores from that image-text
model, read through its ``serving_default`` as a client would: ``match`` (the mean cosine of a
photo's embedding and its caption's, CLIPScore's quantity without its rescaling) and ``R-prec``
(how often the photo ranks its own caption first among itself and 99 other photos' captions
from the same system: ``kerasapps.api.r_precision``). The same figures for one human caption
per photo (reference 1 of 5) give the scale; they are not a ceiling: the matching model sees
what it learnt to see (colour, mostly, on 2 CPU cores), and a caption that names the colours can
outscore a person's. They depend on the matching run, so they compare systems scored by one
run, not with published figures.

Published (Flickr8k test, BLEU-1 / 2 / 3 / 4, ImageNet-pretrained encoders), as tabled by
Show, Attend and Tell (Xu et al. 2015, Table 1): Show and Tell 63 / 41 / 27 / -, soft
attention 67 / 44.8 / 29.9 / 19.5.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import pathlib
import random
import re
import resource
import sys
import tempfile

from benchmarks.machine import describe_machine, run_and_read

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "flickr8k"
RECIPES = ROOT / "plugins" / "captioning" / "kerasapps_captioning" / "recipes"
PUBLISHED = "Show and Tell 63 / 41 / 27 / -; soft attention 67 / 44.8 / 29.9 / 19.5 (test split)"
# --tiny: seconds on 2 cores, for the tests (over the recipes' settings).
TINY_MATCHING = dict(epochs=1, batch_size=8, image_size=32, cnn_filters="8,16", embedding_dim=16, word_dim=8,
                     text_units=8, min_word_count=1)
TINY_CAPTIONING = dict(epochs=1, batch_size=8, image_size=32, cnn_filters="8,16", embed_dim=16, lstm_units=16,
                       captions_per_image=1, min_word_count=1, max_caption_length=12, dropout=0.0, beam_size=1)


def tokenize(text: str) -> list[str]:
    """Lower-case; every character but a letter, digit, apostrophe or space becomes a space; split."""
    return re.sub(r"[^\w\s']|_", " ", text.lower()).split()


def kerasapps_command(task: str, recipe: pathlib.Path, data: pathlib.Path, workdir: pathlib.Path,
                      export_dir: pathlib.Path, overrides: dict) -> list[str]:
    command = [sys.executable, "-m", "kerasapps", "run", task, "--config", str(recipe), "--dataset", f"folder:{data}",
               "--workdir", str(workdir), "--export-dir", str(export_dir), "--samples", "5"]
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    return command


def coco_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """pycocoevalcap's BLEU-1..4 and CIDEr-D of raw texts, tokenised by :func:`tokenize`."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    res = {i: [" ".join(tokenize(h))] for i, h in enumerate(hypotheses)}
    gts = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {**{f"bleu{n}": float(bleu[n - 1]) for n in range(1, 5)}, "cider_d": float(cider)}


def consensus_per_photo(references: list[list[str]]) -> list[str]:
    """Each photo's caption that agrees best (CIDEr-D) with its other captions."""
    from kerasapps.metrics.cider import sentence_cider

    hyps, refs, owner = [], [], []
    for photo, captions in enumerate(references):
        tokens = [tokenize(c) for c in captions]
        for i, caption in enumerate(tokens):
            if len(tokens) > 1:
                hyps.append(caption)
                refs.append(tokens[:i] + tokens[i + 1:])
                owner.append((photo, i))
    best = {}
    for (photo, i), score in zip(owner, sentence_cider(hyps, refs)):
        if photo not in best or score > best[photo][0]:
            best[photo] = (score, i)
    return [captions[best[p][1]] if p in best else captions[0] for p, captions in enumerate(references)]


def best_single_caption(candidates: list[str], references: list[list[str]]) -> str:
    """The candidate whose mean CIDEr-D against every photo's references is highest."""
    from kerasapps.metrics.cider import _counts, _tf_idf  # one definition of the weighting

    refs = [[tokenize(r) for r in captions] for captions in references]
    document_frequency = collections.Counter()
    ref_vectors = []
    for captions in refs:
        counts = [_counts(r, 4) for r in captions]
        document_frequency.update({g for c in counts for g in c})
        ref_vectors.append(counts)
    log_images = math.log(len(refs))
    ref_vectors = [[(_tf_idf(c, document_frequency, log_images, 4), max(len(r) - 1, 0)) for c, r in zip(counts, caps)]
                   for counts, caps in zip(ref_vectors, refs)]

    def score(candidate):
        tokens = tokenize(candidate)
        (hyp, hyp_norms), length = _tf_idf(_counts(tokens, 4), document_frequency, log_images, 4), max(len(tokens) - 1, 0)
        total = 0.0
        for photo in ref_vectors:
            photo_total = 0.0
            for (vectors, norms), ref_length in photo:
                penalty = math.exp(-((length - ref_length) ** 2) / 72.0)
                for n in range(4):
                    if hyp_norms[n] and norms[n]:
                        dot = sum(min(v, vectors[n].get(g, 0.0)) * vectors[n].get(g, 0.0) for g, v in hyp[n].items())
                        photo_total += penalty * dot / (hyp_norms[n] * norms[n])
            total += 10.0 * photo_total / 4 / len(photo)
        return total / len(ref_vectors)

    return max(candidates, key=score)


def served_captions(export_path, files: list[pathlib.Path], batch: int = 64) -> list[str]:
    """Captions from the export's serving_default, fed the files' bytes as a client would."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    out = []
    for start in range(0, len(files), batch):
        data = tf.constant([f.read_bytes() for f in files[start:start + batch]])
        out += [c.decode("utf-8") for c in serve(image_bytes=data)["caption"].numpy()]
    return out


def nearest_neighbour_captions(workdir, folder, split: str, train_captions: list[str], neighbours: int = 25):
    """For each photo of ``split``: ``train_captions`` of the training photo whose encoder output
    (the trained captioner's, cosine similarity) is closest; and the consensus of its
    ``neighbours`` closest training photos' captions (Devlin et al. 2015): of all their captions,
    the one most like the others (cosine of tf-idf weighted 1- to 4-grams, document frequencies
    over the training photos)."""
    import numpy as np
    import tensorflow as tf

    from kerasapps.training.transfer import read_trained_run

    run = read_trained_run(workdir, task="captioning")
    encoder = run.build_model().get_layer("encoder")
    size = run.info["image_size"]
    encode = tf.function(lambda images: tf.math.l2_normalize(encoder(tf.cast(images, tf.float32), training=False), -1))

    def features(name):
        return np.concatenate([encode(b).numpy() for b in folder.image_dataset(name, size).batch(64)])

    similarity = features(split) @ features("train").T
    nearest = [train_captions[i] for i in np.argmax(similarity, axis=1)]
    all_captions = [[tokenize(c) for c in captions] for captions in folder.captions["train"]]
    vector = ngram_vectors(all_captions)
    consensus = []
    for row in np.argsort(-similarity, axis=1)[:, :neighbours]:
        pool = [(i, j) for i in row for j in range(len(all_captions[i]))]
        vectors = np.stack([vector(all_captions[i][j]) for i, j in pool])
        i, j = pool[int(np.argmax((vectors @ vectors.T).sum(axis=1)))]
        consensus.append(folder.captions["train"][i][j])
    return nearest, consensus


def ngram_vectors(photos_captions: list[list[list[str]]], dimensions: int = 1 << 15):
    """A function: tokens -> their unit tf-idf vector of 1- to 4-grams (hashed into ``dimensions``),
    document frequencies counted over the photos (a gram counts once per photo)."""
    import zlib

    import numpy as np

    def grams(tokens):
        return [" ".join(tokens[i:i + n]) for n in range(1, 5) for i in range(len(tokens) - n + 1)]

    frequency = collections.Counter(g for captions in photos_captions for g in {g for c in captions for g in grams(c)})
    photos = len(photos_captions)

    def vector(tokens):
        out = np.zeros(dimensions, np.float32)
        for gram in grams(tokens):
            out[zlib.crc32(gram.encode()) % dimensions] += math.log(photos / max(1, frequency[gram]))
        return out / max(float(np.linalg.norm(out)), 1e-12)

    return vector


def matching_scores(export_path, files: list[pathlib.Path], texts: list[str]) -> dict:
    """``match`` (mean cosine of photo and caption) and ``r_precision`` (the photo's caption first among 100)."""
    from benchmarks.text_to_image_scoring import embed
    from kerasapps.api import r_precision

    images, captions = embed(export_path, [f.read_bytes() for f in files], texts)
    return {"match": float((images * captions).sum(axis=1).mean()),
            "r_precision": r_precision(images, captions, distractors=min(99, len(files) - 1))}


def write_panel(path, photos: list[pathlib.Path], captions: list[str], references: list[list[str]],
                columns: int = 4, side: int = 256):
    """A PNG grid: each photo (enlarged) above its generated caption (bold) and two references."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    font, bold = ImageFont.load_default(size=13), ImageFont.load_default(size=14)
    text_height = 118
    rows = math.ceil(len(photos) / columns)
    panel = Image.new("RGB", (columns * (side + 12) + 12, rows * (side + text_height + 12) + 12), "white")
    draw = ImageDraw.Draw(panel)
    for i, (photo, caption, refs) in enumerate(zip(photos, captions, references)):
        x, y = 12 + (i % columns) * (side + 12), 12 + (i // columns) * (side + text_height + 12)
        panel.paste(Image.open(photo).convert("RGB").resize((side, side), Image.LANCZOS), (x, y))
        y += side + 4
        for line in textwrap.wrap(caption, 34)[:2]:
            draw.text((x, y), line, fill=(0, 0, 140), font=bold)
            y += 17
        for ref in refs[:2]:
            for line in textwrap.wrap("ref: " + ref, 38)[:2]:
                draw.text((x, y), line, fill=(90, 90, 90), font=font)
                y += 16
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    panel.save(path, optimize=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flickr8k_captioning",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="a folder in Flickr8k's layout (Images/ + captions.txt)")
    parser.add_argument("--work", help="working folder; a finished stage in it is not run again (default: a new one)")
    parser.add_argument("--scratch", action="store_true", help="the ablation: recipes/flickr8k-scratch.yaml")
    parser.add_argument("--encoder-run", help="caption with this matching, tagging or classification run's network "
                                              "as encoder (default: train one, recipe flickr8k-matching)")
    parser.add_argument("--no-self-critical", action="store_true",
                        help="stop after the cross-entropy stage (no flickr8k-self-critical fine-tuning)")
    parser.add_argument("--epochs", type=int, help="captioning epochs (default: the recipe's)")
    parser.add_argument("--tiny", action="store_true", help="a few seconds' settings: checks the pipeline runs")
    parser.add_argument("--matching-export", help="a `matching` export: reference-free scores beside BLEU and CIDEr-D")
    parser.add_argument("--panel", help="also write a PNG of 12 scored photos (every 80th) with captions and references")
    args = parser.parse_args(argv)
    data = pathlib.Path(args.data)
    if not (data / "captions.txt").is_file() and not (data / "Flickr8k.token.txt").is_file():
        print(f"skipped: {data} not found (a Flickr8k-style folder: Images/ + captions.txt)")
        return None
    from kerasapps.data.captions import read_captions_folder
    from kerasapps.training.transfer import read_trained_run

    folder = read_captions_folder(data, quiet=True)  # the layout's errors before any training
    scored = folder.scored_split  # "test", or "dev" for a copy without the test list
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="flickr8k-captioning-"))
    work.mkdir(parents=True, exist_ok=True)
    commands, walls, stages = [], {}, {}

    def stage(name, task, recipe, overrides):
        workdir = work / name
        command = kerasapps_command(task, recipe, data, workdir, work / "models", overrides)
        commands.append(command)
        done = workdir / "metrics.json"
        if done.is_file() and "export_path" in json.loads(done.read_text()):
            metrics = json.loads(done.read_text())
            walls[name] = None  # an earlier invocation's: its metrics.json has its wall time
        else:
            metrics, walls[name] = run_and_read(command, workdir)
        stages[name] = metrics
        return workdir, metrics

    encoder_run = args.encoder_run
    caption_overrides = dict(TINY_CAPTIONING) if args.tiny else {}
    if args.epochs:
        caption_overrides["epochs"] = args.epochs
    if args.scratch:
        recipe = RECIPES / "flickr8k-scratch.yaml"
    else:
        recipe = RECIPES / "flickr8k.yaml"
        if encoder_run is None:
            matching_dir, _ = stage("matching", "matching", RECIPES / "flickr8k-matching.yaml",
                                    TINY_MATCHING if args.tiny else {})
            encoder_run = str(matching_dir)
        encoder_task = read_trained_run(encoder_run).task
        caption_overrides.update(encoder=encoder_task, encoder_weights=encoder_run)
    workdir, metrics = stage("captioning", "captioning", recipe, caption_overrides)
    cross_entropy_metrics = None
    if not args.scratch and not args.no_self_critical:
        cross_entropy_metrics = metrics
        tuned_overrides = {**caption_overrides, "initial_weights": str(workdir)}
        tuned_overrides.pop("epochs", None)  # --epochs is the cross-entropy stage's
        if args.tiny:
            tuned_overrides.update(epochs=1, learning_rate=1e-3)
        _, metrics = stage("self-critical", "captioning", RECIPES / "flickr8k-self-critical.yaml", tuned_overrides)

    # -- scores through the export, as a client sees it --------------------------------
    files = [folder.image_dir / name for name in folder.names["test"]]
    references = folder.captions["test"]
    model_captions = served_captions(metrics["export_path"], files)
    train_refs = folder.captions["train"]
    own_consensus = consensus_per_photo(train_refs)
    rng = random.Random(0)
    sample = rng.sample(range(len(train_refs)), min(300, len(train_refs)))
    candidates = rng.sample(own_consensus, min(300, len(own_consensus)))
    single = best_single_caption(candidates, [train_refs[i] for i in sample])
    nearest, neighbours_consensus = nearest_neighbour_captions(workdir, folder, "test", own_consensus)
    systems = {"captioner": model_captions}
    if cross_entropy_metrics is not None:  # the captioner before its self-critical stage, for what that stage gives
        systems["cross-entropy only"] = served_captions(cross_entropy_metrics["export_path"], files)
    systems.update({
        "nearest neighbour": nearest,
        "25-NN consensus": neighbours_consensus,
        "consensus caption": [single] * len(files),
    })
    # distinct: how many different captions the photos get (1 for a system that ignores the photo).
    table = {name: {**coco_scores(texts, references), "distinct": len(set(texts))} for name, texts in systems.items()}
    if args.matching_export:
        for name, texts in systems.items():
            table[name].update(matching_scores(args.matching_export, files, texts))
        human = matching_scores(args.matching_export, files, [refs[0] for refs in references])
    task_metrics = metrics["metrics"]
    peak_gb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024 ** 2

    # -- report ---------------------------------------------------------------------------
    settings = metrics["config"]["params"]
    encoder = ("small CNN from scratch" if settings["encoder"] == "cnn" else
               f"{settings['encoder']} run {settings['encoder_weights']}"
               + (" (frozen, features cached)" if settings.get("freeze_encoder") else ""))
    counts = {split: len(names) for split, names in folder.names.items()}
    print(f"machine: {describe_machine()}")
    for command in commands:
        print(f"command: {' '.join(command[1:])}")
    split_note = "" if scored == "test" else " (this copy has no test list: dev is scored)"
    print(f"{data.name}: {counts['train']} train / {counts['validation']} dev images; scored: {scored} "
          f"({counts['test']} photos, {sum(map(len, references))} references){split_note}")
    for name, m in stages.items():
        wall = walls[name]
        wall_text = f"{wall:.0f} s" if wall is not None else f"{m['wall_time_seconds']:.0f} s (an earlier invocation)"
        print(f"{name}: {m['epochs_completed']} epochs, {m.get('train_examples_per_second')} train images/s, "
              f"wall {wall_text}")
    print(f"encoder: {encoder}; peak memory of one process: {peak_gb:.2f} GB")
    print(f"{scored} scores (pycocoevalcap, beam {settings['beam_size']}, all references):")
    matched = " match  R-prec" if args.matching_export else ""
    print("  system              BLEU-1  BLEU-2  BLEU-3  BLEU-4  CIDEr-D  distinct" + matched)
    for name, s in table.items():
        print(f"  {name:<18}" + "".join(f"{100 * s[f'bleu{n}']:8.1f}" for n in range(1, 5)) + f"{s['cider_d']:9.3f}"
              + f"{s['distinct']:10d}" + (f"{s['match']:7.3f}{s['r_precision']:8.3f}" if matched else ""))
    if args.matching_export:
        print(f"  {'human (reference 1)':<18}" + " " * 59 + f"{human['match']:7.3f}{human['r_precision']:8.3f}"
              f"  (a person's caption, for scale, not a ceiling; chance R-prec 0.010)")
    print("  task's own BLEU   " + "".join(f"{100 * task_metrics[f'bleu{n}']:8.1f}" for n in range(1, 5))
          + f"{task_metrics.get('cider_d', float('nan')):9.3f}  (metrics.json, the same {scored} photos)")
    print(f"published on Flickr8k: {PUBLISHED}")
    print(f"consensus caption: {single!r}")
    for caption, refs in list(zip(model_captions, references))[:3]:
        print(f"  {caption!r}  |  {refs[0]!r}")
    result = {"machine": describe_machine(), "scored_split": scored, "commands": [c[1:] for c in commands],
              "walls": walls, "peak_memory_gb": round(peak_gb, 2), "scores": table, "task_metrics": task_metrics,
              "consensus_caption": single, "captions": dict(zip(folder.names["test"], model_captions)),
              "history": {n: m["history"] for n, m in stages.items()},
              "matching": {"export": args.matching_export, "human_reference": human} if args.matching_export else None}
    (work / "results.json").write_text(json.dumps(result, indent=1))
    if args.panel:
        chosen = list(range(0, len(files), max(1, len(files) // 12)))[:12]
        write_panel(args.panel, [files[i] for i in chosen], [model_captions[i] for i in chosen],
                    [references[i] for i in chosen])
        print(f"panel: {args.panel}")
    print(f"results: {work / 'results.json'}")
    return result


if __name__ == "__main__":
    main()
