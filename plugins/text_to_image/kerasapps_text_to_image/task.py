"""Text to image: StackGAN stage I (Zhang et al. 2017) with conditioning augmentation and
GAN-CLS's matching-aware discriminator (Reed et al. 2016), judged by a network that
reads what the generated picture shows.

Data, model, metrics, serving, in that order. The GAN itself is in ``model.py``,
the judge in ``judge.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Literal, Optional

import numpy as np

from kerasapps.api import (
    CAPTIONS_FOLDER_LAYOUT,
    SPLITS,
    Task,
    TaskConfig,
    TrainedRun,
    UsageError,
    Vocabulary,
    build_vocabulary,
    field,
    frechet_distance,
    r_precision,
    read_captions_folder,
    read_trained_run,
)

# Shown in every sample grid: the example plus a few unseen combinations.
DEMO_CAPTIONS = (
    "a large red circle to the left of a small blue square",
    "a big yellow triangle in the center",
    "a large green cross on its own at the top",
    "a large cyan square below a small magenta circle",
)
NOISE_SALT = 7919  # evaluation noise streams: stateless, from (seed, example index, salt)
R_PRECISION_DISTRACTORS = 99  # AttnGAN's: the true caption among 100


@dataclasses.dataclass
class TextToImageConfig(TaskConfig):
    epochs: int = field(12, "training epochs")
    batch_size: int = field(64, "global batch size")
    learning_rate: float = field(3e-4, "Adam learning rate of both players (beta_1 = 0.5, as DCGAN)")
    image_size: int = field(64, "generated image side (a power of two, >= 16); stage I of StackGAN is 64",
                            minimum=16, maximum=1024)
    stage2: bool = field(False, "add StackGAN's stage II (128x128 refinement); not implemented yet, rejected")
    max_caption_length: int = field(16, "words per caption (longer ones are cut)", minimum=1)
    min_word_count: int = field(1, "words seen fewer times in training captions become [UNK]", minimum=1)
    embed_dim: int = field(64, "word embedding size", minimum=1)
    lstm_units: int = field(64, "units of each direction of the text encoder's BiLSTM", minimum=1)
    z_dim: int = field(64, "noise size", minimum=1)
    cond_dim: int = field(64, "condition size (StackGAN's N_g)", minimum=1)
    generator_filters: int = field(64, "generator filters at 4x4 (halved at each upsampling, at least 16)",
                                   minimum=16)
    discriminator_filters: int = field(8, "discriminator filters of the first layer (doubled at each stride)",
                                      minimum=1)
    conditioning_augmentation: bool = field(True, "sample the condition from N(mu, sigma) with a KL term (StackGAN)")
    # StackGAN uses 1-2 over a pre-trained text embedding; ours learns from scratch, and
    # at 1.0 the KL held the condition near the prior (semantic accuracy 0.118 vs 0.218 at 0.2).
    kl_weight: float = field(0.2, "weight of the conditioning augmentation's KL term", minimum=0)
    mismatched_text: bool = field(True, "GAN-CLS: real image + mismatched caption is a fake for the discriminator")
    train_examples: int = field(6000, "shapes: training images generated (each with 5-6 captions)", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test images each", minimum=1)
    judge_examples: int = field(4000, "shapes: real training images the judge learns from", minimum=1)
    judge_epochs: int = field(6, "judge training epochs", minimum=1)
    grid_draws: int = field(6, "noise draws per caption in sample grids", minimum=1)
    skip_bad_examples: bool = field(False, "folder: skip (and count) rows with a missing image or empty caption")
    matching_run: Optional[str] = field(
        None, "a kerasapps matching run (its --workdir): the test metrics add R-precision and a Frechet "
        "distance in its image features, on any dataset")
    text_encoder: Literal["own", "matching"] = field(
        "own", "own: a BiLSTM trained with the discriminator; matching: matching_run's text encoder and vocabulary, "
               "frozen (a pretrained sentence embedding, as StackGAN's char-CNN-RNN)")

    def validate(self):
        if self.stage2:
            raise UsageError("stage2=true (StackGAN stage II, 128x128) is not implemented yet; "
                             "this task trains stage I (64x64) only")
        size = self.image_size
        if size < 16 or size & (size - 1):
            raise UsageError(f"image_size must be a power of two >= 16, got {size}")
        if self.text_encoder == "matching" and not self.matching_run:
            raise UsageError("text_encoder=matching takes the text encoder of a matching run: give --set "
                             "matching_run=RUN (a kerasapps run matching --workdir)")
        if self.early_stopping_patience:
            raise UsageError("early_stopping_patience is not supported: GAN losses do not measure image quality")


class TextToImageTask(Task):
    """Text to image (BiLSTM text encoder + StackGAN stage I conditional GAN), judged semantic accuracy."""

    name = "text-to-image"
    Config = TextToImageConfig
    # GAN losses do not say which epoch draws best: no monitored metric, so the
    # core keeps no best.weights.h5 and evaluates/exports the last epoch's weights.
    monitor = None
    cpu_bfloat16 = True  # quality checked under mixed_bfloat16: docs/tasks/text-to-image.md
    serving_inputs = {
        "text": "tf.string [N]: captions (empty, unknown-word or over-long captions still give an image)",
        "seed": "int64 [M]: noise seeds; M=0: seed 0 for every caption, M=1: one seed for all, M=N: one each",
    }
    serving_outputs = {"png_bytes": "tf.string [N]: generated PNG images; the same text and seed give the same bytes"}
    folder_layout = (CAPTIONS_FOLDER_LAYOUT + "; judge-based metrics need shapes: folder data gets losses and "
                     "diversity, and with --set matching_run=RUN R-precision and a Frechet distance")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.config.matching_run and "matching_run" not in self.info:
            # Read now, before any data, and recorded in the info: evaluation rebuilds the
            # matching model from the record, not from the command line's path.
            self.info["matching_run"] = read_trained_run(self.config.matching_run, task="matching").to_json()

    # -- data: each loader returns per split (uint8 images [N, S, S, 3], each image's captions) -----
    def load_registered(self):  # --dataset shapes
        shapes = self.source.load()
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        out = {}
        for split in SPLITS:
            arrays = shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=self.config.image_size)
            out[split] = (arrays["image"], arrays["captions"])
        return out

    def load_folder(self):
        """The captioning task's layout (``kerasapps.data.captions``), held as arrays like shapes."""
        folder = read_captions_folder(self.source.path, skip_bad_examples=self.config.skip_bad_examples)
        self.info["scored_split"] = folder.scored_split
        return {split: (np.stack(list(folder.image_dataset(split, self.config.image_size).as_numpy_iterator())),
                        folder.captions[split]) for split in SPLITS}

    def prepare_datasets(self, splits):
        """Batches of ``{"image", "tokens", "wrong_tokens", "z", "eps"}`` (no targets).

        Training pairs each image with one of its captions at random; evaluation
        splits use caption ``i % count`` of image ``i``, so all phrasings are judged.
        """
        images = {split: splits[split][0] for split in SPLITS}
        captions = {split: splits[split][1] for split in SPLITS}
        if self.config.text_encoder == "matching":  # the frozen encoder reads the words it was trained on
            words = self.info["matching_run"]["info"]["vocabulary"]
        else:
            words = build_vocabulary((c for caps in captions["train"] for c in caps),
                                     min_count=self.config.min_word_count)
        self.info.update(vocabulary=words, image_size=self.config.image_size, dataset_kind=self.source.kind)
        self.images = images
        self.captions = {split: [caps[i % len(caps)] for i, caps in enumerate(captions[split])] for split in SPLITS}
        return {split: self._pipeline(images[split], captions[split], split) for split in SPLITS}

    def _pipeline(self, images, captions, split):
        import tensorflow as tf

        cfg, vocab, train = self.config, self.vocabulary, split == "train"
        refs = max(len(c) for c in captions)
        padded = tf.constant([list(c) + [""] * (refs - len(c)) for c in captions])
        counts = tf.constant([len(c) for c in captions], tf.int32)
        ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(images),
                                  tf.data.Dataset.from_tensor_slices((padded, counts)))).enumerate()

        def example(index, image_and_captions):
            image, (caps, count) = image_and_captions
            pick = (tf.random.uniform([], maxval=count, dtype=tf.int32, seed=self.seed) if train
                    else tf.cast(index, tf.int32) % count)
            return {"image": image, "tokens": tf.cast(vocab.encode(caps[pick][tf.newaxis])[0], tf.int32),
                    "index": index}

        def add_noise_and_mismatch(batch):
            n = tf.shape(batch["tokens"])[0]
            # The mismatched caption is the next example's, chosen here in the input
            # pipeline: every replica sees the pairing the global batch defines.
            out = {"image": tf.cast(batch["image"], tf.float32) / 127.5 - 1.0, "tokens": batch["tokens"],
                   "wrong_tokens": tf.roll(batch["tokens"], shift=1, axis=0)}
            if train:
                out["z"] = tf.random.normal([n, cfg.z_dim], seed=self.seed)
                out["eps"] = tf.random.normal([n, cfg.cond_dim], seed=self.seed + 1)
            else:  # the same noise at every validation pass
                out["z"], out["eps"] = indexed_noise(batch["index"], self.seed, cfg.z_dim, cfg.cond_dim)
            return out

        # Whole batches in training (Task.batch's policy): BatchNorm and the mismatched pairs want them.
        return self.batch(ds, split, map_example=example, map_batch=add_noise_and_mismatch)

    @property
    def vocabulary(self) -> Vocabulary:
        if getattr(self, "_vocabulary", None) is None:
            self._vocabulary = Vocabulary(self.info["vocabulary"], self.caption_length)
        return self._vocabulary

    @property
    def caption_length(self) -> int:
        """Tokens per caption: the frozen matching encoder's own length, else ``max_caption_length``."""
        if self.config.text_encoder == "matching":
            return int(self.info["matching_run"]["params"]["max_caption_length"])
        return self.config.max_caption_length

    # -- model -----------------------------------------------------------------
    def build_model(self):
        from kerasapps_text_to_image.models import build_gan

        cfg = self.config
        return build_gan(
            self.vocabulary.size, self.caption_length, cfg.image_size, embed_dim=cfg.embed_dim,
            lstm_units=cfg.lstm_units, z_dim=cfg.z_dim, cond_dim=cfg.cond_dim,
            generator_filters=cfg.generator_filters, discriminator_filters=cfg.discriminator_filters,
            augmentation=cfg.conditioning_augmentation, kl_weight=cfg.kl_weight,
            mismatched_text=cfg.mismatched_text, learning_rate=cfg.learning_rate,
            text_encoder=self._matching_text_encoder() if cfg.text_encoder == "matching" else None,
        )

    def _matching_text_encoder(self):
        """The matching run's text encoder (token ids -> unit sentence vector), frozen. Its weights
        come from the matching run, then travel in this run's own weights files."""
        run = TrainedRun.from_json(self.info["matching_run"])
        encoder = run.build_model(load_weights=run.weights_available).text_encoder
        encoder.trainable = False
        return encoder

    def build_training_state(self, model, batch) -> None:
        # build_gan built both optimizers already (so do export and evaluate, which
        # load weights files holding their slots); only the metrics are left.
        for metric in model.metrics:
            metric.reset_state()

    def training_callbacks(self, model, datasets, workdir):
        from kerasapps_text_to_image.callbacks import ProgressGrid

        return [ProgressGrid(self, workdir / "progress")]

    # -- generation ------------------------------------------------------------
    def generate(self, model, captions, seeds) -> np.ndarray:
        """Captions (str) and integer seeds -> uint8 images ``[N, S, S, 3]`` (as the SavedModel does)."""
        import tensorflow as tf

        out = []
        for start in range(0, len(captions), 256):
            text = tf.constant(list(captions[start:start + 256]))
            seed = tf.constant(np.asarray(seeds[start:start + 256], np.int64))
            out.append(self._generate_uint8(model)(text, seed).numpy())
        return np.concatenate(out) if out else np.zeros((0,) + (self.config.image_size,) * 2 + (3,), np.uint8)

    def _generate_uint8(self, model):
        import tensorflow as tf

        if getattr(self, "_generator_fn", (None, None))[0] is not model:
            cfg, vocab = self.config, self.vocabulary

            # No AutoGraph: plain graph code (tf.cond), and the serving function closes over it.
            @tf.function(reduce_retracing=True, autograph=False)
            def generate(text, seed):
                n = tf.shape(text)[0]
                seeds = tf.cond(tf.size(seed) > 0, lambda: tf.gather(seed, tf.range(n) % tf.size(seed)),
                                lambda: tf.zeros([n], tf.int64))
                z, eps = seeded_noise(seeds, cfg.z_dim, cfg.cond_dim)
                tokens = tf.cast(vocab.encode(text), tf.int32)
                images = model.generate(tokens, z, eps, training=False)
                return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)

            self._generator_fn = (model, generate)
        return self._generator_fn[1]

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        """Losses on the test split, then (on shapes) what the judge reads in generated images.

        - ``semantic_accuracy``: the main object's colour and shape are the caption's
          (``all_facts_accuracy`` adds stated position and small objects);
        - ``real_*``: the judge on the real test images with the same captions (its ceiling);
        - ``shuffled_*``: generated images checked against shuffled captions (the rate
          of a generator that ignores the text);
        - ``diversity``: mean absolute pixel difference (0..1) between noise draws of one
          caption; ``distinct_draws``: the fraction of draw pairs that differ visibly;
        - ``frechet_judge_distance``: Frechet distance between generated and real test
          images in the judge's 128-d feature space (NOT the Inception FID; not comparable
          to published FIDs); ``frechet_judge_distance_real`` is real validation vs real
          test images, the floor.

        With a matching run (``matching_run``), on any dataset: see :meth:`_matching_metrics`.
        """
        from kerasapps_text_to_image import judge as judging

        captions = self.captions["test"]
        seeds = [self.seed * 1_000_003 + i for i in range(len(captions))]
        generated = self.generate(model, captions, seeds)
        metrics.update(self._diversity(model, captions[:50]))
        if "matching_run" in self.info:
            metrics.update(self._matching_metrics(model, captions, seeds, generated))
        if self.source.kind != "registered":
            return metrics
        judge = self.judge
        facts = [judging.caption_facts(c) for c in captions]
        reading = judge.read(generated)
        metrics.update(judging.summarize(judging.check_facts(facts, reading)))
        metrics.update(judging.summarize(judging.check_facts(facts, judge.read(self.images["test"])), "real_"))
        order = np.random.default_rng(self.seed).permutation(len(captions))
        metrics.update(judging.summarize(judging.check_facts([facts[k] for k in order], reading), "shuffled_"))
        real = judge.features(self.images["test"])
        metrics["frechet_judge_distance"] = frechet_distance(judge.features(generated), real)
        metrics["frechet_judge_distance_real"] = frechet_distance(
            judge.features(self.images["validation"]), real)
        return metrics

    def _matching_metrics(self, model, captions, seeds, generated) -> dict:
        """What the matching run's encoders make of the test images, each scored against its caption:

        - ``r_precision``: the generated image's caption ranked first among itself and 99
          captions of other images (AttnGAN's R-precision, in this matching model, not the
          DAMSM encoders of published figures); ``real_r_precision``: the real test images
          (the ceiling); ``text_blind_r_precision``: images the generator drew from other
          images' captions, with the same noise (the floor of a generator that ignores the
          text); ``r_precision_chance``: 1 / candidates;
        - ``frechet_matching_distance``: Frechet distance between real and generated test
          images in the matching model's image embeddings (NOT the Inception FID, not comparable
          with published FIDs); ``frechet_matching_distance_real``: real validation vs real
          test images, what two samples of real images give. Where the test split is the
          validation split (a copy without a test list), both compare halves of it instead:
          generated first half against real second half, real first half against it.
        """
        run = TrainedRun.from_json(self.info["matching_run"])
        if not run.weights_available:
            print(f"note: {run.weights} is gone: no matching-model metrics", file=sys.stderr)
            return {}
        if len(captions) < 2:
            return {}
        matcher = run.build_model()
        rng = np.random.default_rng(self.seed)
        # A random cycle: every image gets another image's caption, none its own.
        cycle = rng.permutation(len(captions))
        partner = np.empty_like(cycle)
        partner[cycle] = np.roll(cycle, -1)
        blind = self.generate(model, [captions[j] for j in partner], seeds)
        caption_vectors = matcher.text_embeddings(captions)
        real_vectors = matcher.image_embeddings(self.images["test"])
        generated_vectors = matcher.image_embeddings(generated)
        distractors = min(R_PRECISION_DISTRACTORS, len(captions) - 1)

        def precision(image_vectors):
            return r_precision(image_vectors, caption_vectors, distractors, seed=self.seed)

        validation, test = self.images["validation"], self.images["test"]
        if len(validation) == len(test) and np.array_equal(validation, test):
            # No test split of its own (scored on validation): real against real would be the same
            # images, distance 0. Halves of the split instead, the generated images scored the same way.
            half = len(test) // 2
            frechet = {"frechet_matching_distance": frechet_distance(real_vectors[half:], generated_vectors[:half]),
                       "frechet_matching_distance_real": frechet_distance(real_vectors[half:], real_vectors[:half])}
        else:
            frechet = {"frechet_matching_distance": frechet_distance(real_vectors, generated_vectors),
                       "frechet_matching_distance_real": frechet_distance(matcher.image_embeddings(validation),
                                                                          real_vectors)}
        return {
            "r_precision": precision(generated_vectors),
            "real_r_precision": precision(real_vectors),
            "text_blind_r_precision": precision(matcher.image_embeddings(blind)),
            "r_precision_chance": 1.0 / (distractors + 1),
            **frechet,
        }

    @property
    def judge(self):
        from kerasapps_text_to_image import judge as judging

        cfg = self.config
        return judging.train_judge(self.seed, cfg.image_size, cfg.judge_examples, cfg.judge_epochs)

    def _diversity(self, model, captions, draws: int = 4) -> dict:
        rows = [c for c in captions for _ in range(draws)]
        seeds = [10_000 + k for k in range(len(rows))]
        images = self.generate(model, rows, seeds).astype(np.float32).reshape(len(captions), draws, -1) / 255.0
        pair = [np.abs(images[:, a] - images[:, b]).mean(-1) for a in range(draws) for b in range(a + 1, draws)]
        pair = np.stack(pair)
        return {"diversity": float(pair.mean()), "distinct_draws": float((pair > 0.02).mean())}

    def describe_predictions(self, model, dataset, count=5):
        from kerasapps_text_to_image import judge as judging

        captions = self.captions["test"][:count]
        images = self.generate(model, captions, [0] * len(captions))
        if self.source.kind != "registered":
            return [f"{c!r} -> image {i.shape[0]}x{i.shape[1]}" for c, i in zip(captions, images)]
        reading = self.judge.read(images)
        judged = judging.check_facts([judging.caption_facts(c) for c in captions], reading)
        lines = []
        for i, caption in enumerate(captions):
            seen = (f"{judging.COLOURS[reading['colour'][i]]} {judging.SHAPES[reading['shape'][i]]} "
                    f"({judging.CELLS[reading['cell'][i]]})")
            lines.append(f"{'=' if judged['main'][i] else ' '} caption: {caption}\n      judge sees: {seen}")
        return lines

    def save_samples(self, model, dataset, directory, count=8):
        """``grid.png``: one row per caption (held-out ones, then demo ones), one column per
        noise draw, a real image first for held-out rows; ``grid.txt`` names the rows."""
        held_out = self.captions["test"][:count]
        captions = list(held_out) + (list(DEMO_CAPTIONS) if self.source.kind == "registered" else [])
        real = list(self.images["test"][:count]) + [None] * (len(captions) - len(held_out))
        return write_grid(self, model, captions, directory / "grid", real)

    # -- serving -----------------------------------------------------------------
    def serving_function(self, model):
        import tensorflow as tf

        generate = self._generate_uint8(model)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                      tf.TensorSpec([None], tf.int64, name="seed")], autograph=False)
        def serve(text, seed):
            images = generate(text, seed)
            return {"png_bytes": tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)}

        return serve

    def serving_resources(self):
        return [self.vocabulary.vectorizer]


def seeded_noise(seeds, z_dim: int, cond_dim: int):
    """int64 seeds ``[N]`` -> (z ``[N, z_dim]``, eps ``[N, cond_dim]``), each row a pure function of its seed.

    Stateless random numbers: the same seed gives the same image in any batch, process or machine.
    """
    import tensorflow as tf

    def one(seed):
        noise = tf.random.stateless_normal([z_dim + cond_dim], seed=tf.stack([seed, tf.constant(NOISE_SALT, tf.int64)]))
        return noise

    noise = tf.map_fn(one, tf.cast(seeds, tf.int64), fn_output_signature=tf.TensorSpec([z_dim + cond_dim], tf.float32))
    return noise[:, :z_dim], noise[:, z_dim:]


def indexed_noise(index, seed: int, z_dim: int, cond_dim: int):
    """Noise for evaluation examples, from their index: the same at every validation pass."""
    import tensorflow as tf

    return seeded_noise(tf.cast(index, tf.int64) + seed * 1_000_003 + 500_000_000, z_dim, cond_dim)


def write_grid(task, model, captions, stem, real=None, draws: int | None = None) -> list:
    """Write ``stem.png`` (rows: captions; columns: [real,] noise draws) and ``stem.txt`` (row captions)."""
    import tensorflow as tf

    draws = draws or task.config.grid_draws
    size = task.config.image_size
    rows = [c for c in captions for _ in range(draws)]
    images = task.generate(model, rows, [k % draws for k in range(len(rows))])
    images = images.reshape(len(captions), draws, size, size, 3)
    pad = 2
    columns = draws + (1 if real is not None else 0)
    grid = np.full((len(captions) * (size + pad) + pad, columns * (size + pad) + pad, 3), 255, np.uint8)
    for r in range(len(captions)):
        cells = ([real[r] if real[r] is not None else np.full((size, size, 3), 255, np.uint8)] if real is not None
                 else []) + list(images[r])
        for c, cell in enumerate(cells):
            y, x = pad + r * (size + pad), pad + c * (size + pad)
            grid[y:y + size, x:x + size] = cell
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, txt = stem.with_suffix(".png"), stem.with_suffix(".txt")
    png.write_bytes(tf.io.encode_png(grid).numpy())
    header = "columns: " + ("real image, " if real is not None else "") + f"{draws} noise draws (seeds 0..{draws - 1})"
    txt.write_text(header + "\n" + "\n".join(f"row {i + 1}: {c}" for i, c in enumerate(captions)) + "\n")
    return [png, txt]


