"""pix2pix: image-to-image translation with a conditional GAN (Isola et al. 2017).

Data, model, metrics, serving, in that order. Images travel as uint8 pairs
(input A, target B) until the batch, then as float32 in [-1, 1] (the
generator's tanh range); every metric is computed in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Literal

import numpy as np

from kerasapps.api import (SPLITS, Task, TaskConfig, UsageError, decode_image, encode_png, field, to_png_bytes)
from kerasapps_pix2pix.data import read_folder


@dataclasses.dataclass
class Pix2PixConfig(TaskConfig):
    epochs: int = field(10, "training epochs")
    batch_size: int = field(16, "global batch size (the paper: 1 for facades; instance norm makes "
                                "each example's result independent of the batch)")
    learning_rate: float = field(2e-4, "Adam learning rate of both networks (the paper: 2e-4)")
    beta_1: float = field(0.5, "Adam beta_1 of both networks (the paper: 0.5)", minimum=0, below=1)
    l1_weight: float = field(100.0, "lambda: weight of the L1 term in the generator loss (the paper: 100)",
                             minimum=0)
    image_size: int = field(64, "model input and output side, a power of 2 (the paper: 256)",
                                minimum=16, maximum=4096)
    generator_filters: int = field(32, "width of the first U-Net block, doubling to 8x (the paper: 64)",
                                       minimum=1)
    discriminator_filters: int = field(32, "width of the first PatchGAN block, doubling to 8x (the paper: 64)",
                                           minimum=1)
    discriminator_layers: int = field(3, "PatchGAN stride-2 blocks: 1 -> 16x16 patches, 2 -> 34x34, "
                                         "3 -> 70x70 (the paper's)", minimum=1)
    dropout: float = field(0.5, "dropout in the first three decoder blocks, the paper's noise (0 = deterministic)",
                           minimum=0, below=1)
    normalization: Literal["instance", "batch"] = field(
        "instance", "instance (the paper's batch norm at batch size 1) or batch")
    direction: Literal["AtoB", "BtoA"] = field(
        "AtoB", "AtoB: A is the input, B the target; BtoA swaps them (the pix2pix facades release needs BtoA)")
    jitter: bool = field(True, "random jitter as in the paper: resize up by jitter_scale, random crop back, "
                               "random mirror; the same for input and target")
    jitter_scale: float = field(286 / 256, "resize factor before the random crop (the paper: 286/256)",
                                minimum=1)
    train_examples: int = field(2000, "shapes: training scenes generated", minimum=1)
    eval_examples: int = field(200, "shapes: validation and test scenes each", minimum=1)
    grid_examples: int = field(4, "fixed validation examples in each epoch's progress grid", minimum=1)

    def validate(self):
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise UsageError(f"image_size must be a power of 2 of at least 16 (the U-Net halves it down to 1 "
                             f"and SSIM needs 11x11 windows), got {self.image_size}")


class Pix2PixTask(Task):
    """Image-to-image translation: U-Net generator and PatchGAN discriminator (pix2pix)."""

    name = "pix2pix"
    Config = Pix2PixConfig
    monitor = "val_l1"
    monitor_mode = "min"
    cpu_bfloat16 = True  # quality checked under mixed_bfloat16: docs/tasks/pix2pix.md
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG input images of any size "
                                     "(grey or RGBA converted to RGB)"}
    serving_outputs = {"png_bytes": "tf.string [N]: the generated image as PNG, resized back to the "
                                    "input's own size (the model works at image_size x image_size)"}
    folder_layout = (
        "one of: (1) A|B side by side, each file A left, B right, width = 2 x height, in PATH/train, val, test "
        "or directly in PATH (the pix2pix release: facades, maps, edges2shoes); (2) PATH/A/ and PATH/B/ with "
        "files of the same name (optionally A/train, B/train, ...); (3) the CMP facade base set as distributed "
        "(PATH or PATH/base holding cmp_*.png palette label maps and cmp_*.jpg photos: label map -> photo). "
        "Without split folders: 80/10/10 by file name; images resized to image_size square; grey and RGBA "
        "converted to RGB. --set direction=BtoA swaps input and target."
    )

    # -- data: each loader returns per split (A images, B images), uint8 arrays -----------
    def load_registered(self):  # --dataset shapes
        """Input: the scene's object map in its class colours; target: the rendered scene."""
        shapes = self.source.load()
        colours = np.array(shapes.MASK_COLOURS, np.uint8)
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        self.info["layout"] = "shapes: colour-coded object map (A) -> rendered scene (B)"
        out = {}
        for split in SPLITS:
            data = shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=self.config.image_size)
            out[split] = (colours[data["mask"]], data["image"])
        return out

    def load_folder(self):
        arrays = read_folder(self.source.path, self.config.image_size)
        self.info["layout"] = arrays.pop("layout")
        self.info["scored_split"] = arrays.pop("scored_split")  # figures are labelled with it
        return arrays

    def prepare_datasets(self, arrays):
        """The direction (AtoB or BtoA), jitter of the training split, then batching."""
        import tensorflow as tf

        cfg = self.config
        if cfg.direction == "BtoA":
            arrays = {split: (b, a) for split, (a, b) in arrays.items()}
        self.info["image_size"] = cfg.image_size
        self.info["examples"] = {split: int(len(arrays[split][0])) for split in SPLITS}
        out = {}
        for split in SPLITS:
            dataset = tf.data.Dataset.from_tensor_slices(arrays[split])
            if split == "train" and cfg.jitter:
                dataset = dataset.map(self._jitter, num_parallel_calls=tf.data.AUTOTUNE)
            out[split] = self.batch(dataset, split)
        return out

    def _jitter(self, inputs, targets):
        """Resize up, random crop, random mirror: stacked so that both sides move together."""
        import tensorflow as tf

        size = self.config.image_size
        big = int(math.ceil(size * self.config.jitter_scale))
        both = tf.image.resize(tf.concat([tf.cast(inputs, tf.float32), tf.cast(targets, tf.float32)], -1),
                               (big, big))
        both = tf.image.random_crop(both, (size, size, 6))
        both = tf.image.random_flip_left_right(both)
        both = tf.cast(tf.round(both), tf.uint8)
        return both[..., :3], both[..., 3:]

    def batch(self, dataset, split, shuffle_buffer=5_000, map_batch=None, map_example=None):
        # uint8 until here (4x less memory in shuffle buffers), then [-1, 1] floats.
        import tensorflow as tf

        def to_model_range(inputs, targets):
            return tf.cast(inputs, tf.float32) / 127.5 - 1.0, tf.cast(targets, tf.float32) / 127.5 - 1.0

        return super().batch(dataset, split, shuffle_buffer, map_batch=to_model_range, map_example=map_example)

    # -- model ---------------------------------------------------------------
    def build_model(self):
        import keras
        from kerasapps_pix2pix.models import Pix2Pix, patchgan_discriminator, unet_generator

        cfg = self.config
        size = int(self.info.get("image_size", cfg.image_size))
        model = Pix2Pix(
            unet_generator(size, cfg.generator_filters, cfg.dropout, cfg.normalization),
            patchgan_discriminator(size, cfg.discriminator_filters, cfg.discriminator_layers, cfg.normalization),
            l1_weight=cfg.l1_weight,
            name="pix2pix",
        )
        model.compile(keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, name="generator_adam"),
                      keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, name="discriminator_adam"))
        return model

    def build_training_state(self, model, batch):
        """Both optimizers are built by ``Pix2Pix.compile`` (inside the scope); keep the
        generator's initial weights for the "before training" baseline of ``evaluate``."""
        self.initial_generator_weights = [np.array(w) for w in model.generator.get_weights()]

    def training_callbacks(self, model, datasets, workdir):
        from kerasapps_pix2pix.callbacks import ProgressGrid

        return [ProgressGrid(datasets["validation"], pathlib.Path(workdir) / "progress", self.config.grid_examples)]

    # -- metrics -------------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        """L1, PSNR, SSIM of the trained generator, beside two baselines on the same images:
        ``identity_*`` (the input itself as the output) and ``untrained_*`` (the generator
        as initialised, before its first step)."""
        from kerasapps.api import mean_image_quality

        from kerasapps_pix2pix.models import MODEL_RANGE

        metrics.update({f"identity_{k}": v for k, v in mean_image_quality(dataset, value_range=MODEL_RANGE).items()})
        initial = getattr(self, "initial_generator_weights", None)
        if initial is not None:
            trained = model.generator.get_weights()
            model.generator.set_weights(initial)
            try:
                untrained = mean_image_quality(dataset, lambda inputs: model.generator(inputs, training=False),
                                               MODEL_RANGE)
                metrics.update({f"untrained_{k}": v for k, v in untrained.items()})
            finally:
                model.generator.set_weights(trained)
        print("held-out image quality (L1 lower is better; PSNR, SSIM higher):")
        for row in ("", "identity_", "untrained_"):
            if f"{row}l1" in metrics:
                name = {"": "pix2pix", "identity_": "identity (input as output)",
                        "untrained_": "generator before training"}[row]
                print(f"  {name:<28} L1 {metrics[f'{row}l1']:.4f}  PSNR {metrics[f'{row}psnr']:.2f} dB  "
                      f"SSIM {metrics[f'{row}ssim']:.4f}")
        return metrics

    def _examples(self, model, dataset, count):
        inputs, targets = next(iter(dataset.unbatch().batch(count)))
        return inputs, targets, model.generator(inputs, training=False)

    def describe_predictions(self, model, dataset, count=5):
        from kerasapps.api import image_quality

        from kerasapps_pix2pix.models import MODEL_RANGE

        inputs, targets, generated = self._examples(model, dataset, count)
        ours = [np.asarray(m) for m in image_quality(generated, targets, MODEL_RANGE)]
        identity = [np.asarray(m) for m in image_quality(inputs, targets, MODEL_RANGE)]
        return [f"L1 {ours[0][i]:.4f} (identity {identity[0][i]:.4f})  PSNR {ours[1][i]:.2f} dB  "
                f"SSIM {ours[2][i]:.4f}" for i in range(len(ours[0]))]

    def save_samples(self, model, dataset, directory, count=8):
        """PNG panels of held-out examples: input | target | output."""
        from kerasapps_pix2pix.callbacks import grid_rows

        inputs, targets, generated = self._examples(model, dataset, count)
        paths = []
        for i, row in enumerate(grid_rows(inputs, targets, generated)):
            path = pathlib.Path(directory) / f"sample_{i:02d}.png"
            path.write_bytes(encode_png(row))
            paths.append(str(path))
        return paths

    # -- serving -------------------------------------------------------------
    def serving_function(self, model):
        import tensorflow as tf
        from kerasapps_pix2pix.callbacks import to_pixels

        size = int(self.info["image_size"])
        generator = model.generator

        def prepare(image_bytes):
            # channels=3: grey and RGBA inputs become RGB, palette PNGs go through their palette.
            image = decode_image(image_bytes)
            resized = tf.image.resize(image, (size, size), antialias=True)
            return resized / 127.5 - 1.0, tf.shape(image)[:2]

        def encode(args):
            generated, own_size = args
            return to_png_bytes(tf.image.resize(to_pixels(generated[None]), own_size)[0])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            images, sizes = tf.map_fn(prepare, image_bytes, fn_output_signature=(
                tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.int32)))
            generated = generator(images, training=False)
            pngs = tf.map_fn(encode, (generated, sizes), fn_output_signature=tf.TensorSpec([], tf.string))
            return {"png_bytes": pngs}

        return serve


__all__ = ["Pix2PixConfig", "Pix2PixTask"]
