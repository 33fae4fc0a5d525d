"""R-precision and a Fréchet distance of a text-to-image export, scored as a client would, by any
matching export: the generator and the scorer are two SavedModels, so the scorer can be a
matching run the generator never read (another seed), not only the one it was trained beside.

    python -m benchmarks.text_to_image_scoring --t2i-export saved_models/text-to-image/2 \\
        --matching-export saved_models/matching/3 [--data ../shared/data/flickr8k] [--count 1000]

Reads the data folder's scored split (test, or dev for a copy without the test list: the
printed label says which), gives image ``i`` caption ``i % 5`` (as the task's evaluation does),
asks the text-to-image export for one image per caption (seed ``i``), and embeds generated
images, real photos and captions with the matching export's ``serving_default``. Prints
R-precision (the caption first among itself and 99 other images' captions) for the real
photos (the ceiling), the generated images, and images generated from another photo's caption
(a random cycle, the same seeds: the text-blind floor), and the Fréchet distance between
generated and real images in the matching image embeddings (halves of the split, not FID).
"""

import argparse
import json
import pathlib

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"


def generate(export_path, captions: list[str], seeds: list[int], batch: int = 50) -> list[bytes]:
    """PNG bytes from a text-to-image export, one per caption, with the given seeds."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    images = []
    for start in range(0, len(captions), batch):
        out = serve(text=tf.constant(captions[start:start + batch]),
                    seed=tf.constant(seeds[start:start + batch], tf.int64))
        images.extend(out["png_bytes"].numpy().tolist())
    return images


def embed(export_path, images: list[bytes], texts: list[str], batch: int = 64):
    """(image embeddings, text embeddings) ``[N, D]`` of a matching export, row i pairing images[i] (encoded
    bytes) and texts[i]; also the Flickr8k captioning benchmark's reference-free scores."""
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    image_rows, text_rows = [], []
    for start in range(0, len(images), batch):
        out = serve(image_bytes=tf.constant(images[start:start + batch]), text=tf.constant(texts[start:start + batch]))
        image_rows.append(out["image_embedding"].numpy())
        text_rows.append(out["text_embedding"].numpy())
    return np.concatenate(image_rows), np.concatenate(text_rows)


def score(t2i_export, matching_export, data, count=None, seed=0) -> dict:
    """The figures (module docstring) as a dict; ``count`` limits the split's images."""
    import numpy as np

    from kerasapps.api import frechet_distance, r_precision
    from kerasapps.data.captions import read_captions_folder

    folder = read_captions_folder(pathlib.Path(data), quiet=True)
    names = folder.names["test"][:count]
    captions = [refs[i % len(refs)] for i, refs in enumerate(folder.captions["test"][:len(names)])]
    seeds = list(range(len(names)))
    partner = np.empty(len(names), int)  # a random cycle: every image another image's caption
    cycle = np.random.default_rng(seed).permutation(len(names))
    partner[cycle] = np.roll(cycle, -1)
    photos = [(folder.image_dir / name).read_bytes() for name in names]
    generated = generate(t2i_export, captions, seeds)
    blind = generate(t2i_export, [captions[j] for j in partner], seeds)
    real_vectors, caption_vectors = embed(matching_export, photos, captions)
    generated_vectors, _ = embed(matching_export, generated, captions)
    blind_vectors, _ = embed(matching_export, blind, captions)
    distractors = min(99, len(names) - 1)
    half = len(names) // 2
    return {
        "split": folder.scored_split, "images": len(names),
        "real_r_precision": r_precision(real_vectors, caption_vectors, distractors, seed=seed),
        "r_precision": r_precision(generated_vectors, caption_vectors, distractors, seed=seed),
        "text_blind_r_precision": r_precision(blind_vectors, caption_vectors, distractors, seed=seed),
        "r_precision_chance": 1.0 / (distractors + 1),
        "frechet_matching_distance": frechet_distance(real_vectors[half:], generated_vectors[:half]),
        "frechet_matching_distance_real": frechet_distance(real_vectors[half:], real_vectors[:half]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_to_image_scoring",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--t2i-export", required=True, help="a text-to-image SavedModel version folder")
    parser.add_argument("--matching-export", required=True, help="a matching SavedModel version folder (the scorer)")
    parser.add_argument("--data", default=str(DATA), help="a folder in Flickr8k's layout (Images/ + captions.txt)")
    parser.add_argument("--count", type=int, help="score only the split's first COUNT images")
    args = parser.parse_args(argv)
    figures = score(args.t2i_export, args.matching_export, args.data, args.count)
    label = "dev (this copy has no test list)" if figures["split"] != "test" else "test"
    print(f"{figures['images']} {label} images; generator {args.t2i_export}, scorer {args.matching_export}")
    for key, value in figures.items():
        if isinstance(value, float):
            print(f"{key:<32} {value:.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
