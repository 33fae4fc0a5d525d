"""Semantic segmentation: SegNet-Basic (default), SegNet (VGG16 depth), U-Net.

Data, model, metrics, serving, in that order. Masks travel as uint8 class ids
with 255 = void (ignored by the loss and every metric).
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
from typing import Literal, Optional

import numpy as np

from kerasapps.api import GROUP_PATTERN, SPLITS, Task, TaskConfig, UsageError, decode_image, encode_png, field, load_tfds, to_png_bytes
from kerasapps_segmentation.data import read_folder, read_native

VOID = 255  # the ignore label in every mask of the pipeline
# tfds:oxford_iiit_pet trimaps: 1 pet, 2 background, 3 border -> 0 background, 1 pet, 2 border.
PET_CLASSES = ("background", "pet", "border")
PET_COLOURS = ((0, 0, 0), (220, 60, 60), (250, 220, 60))
PET_TRIMAP = (VOID, 1, 0, 2)
SCORES = ("pixel_accuracy", "class_accuracy", "mean_iou")  # the confusion-matrix scores, by their metric names


SEGNET_BASIC_DEPTH = 4  # encoder stages of SegNet-Basic


@dataclasses.dataclass
class SegmentationConfig(TaskConfig):
    epochs: int = field(6, "training epochs")
    batch_size: int = field(32, "global batch size")
    learning_rate: float = field(2e-3, "Adam learning rate (the peak, with lr_schedule=cosine)")
    lr_schedule: Literal["constant", "cosine"] = field(
        "constant", "constant: keep the learning rate; cosine: decay it to 5% over the whole run")
    model: Literal["segnet_basic", "segnet", "unet"] = field(
        "segnet_basic", "segnet_basic (4+4 stages), segnet (VGG16-depth SegNet) or unet")
    width: int = field(64, "channels of SegNet-Basic; first-level width of SegNet and U-Net (doubling down)",
                       minimum=1, maximum=4096)
    kernel_size: int = field(3, "SegNet-Basic convolution size (the paper: 7)", minimum=1, maximum=31)
    stage_widths: tuple[int, ...] = field(
        (), "SegNet-Basic: the 4 encoders' widths, then the last decoder's (each other decoder has the width of the "
            "encoder whose pooling indices unpool it; kerasapps compress sets them); empty: width everywhere",
        minimum=1)
    image_size: Optional[tuple[int, ...]] = field(
        None, "model input: SIDE or HEIGHT,WIDTH; default 64 for shapes, 128 for tfds, the first image's for folder:",
        minimum=16, maximum=8192)
    crop_size: tuple[int, ...] = field(
        (), "train on random crops SIDE or HEIGHT,WIDTH of each image at image_size (after the flip and zoom): the "
            "network is fully convolutional, so validation, test and serving see whole images at image_size; "
            "full-resolution training at a fraction of the cost per step. Empty: whole images", minimum=16)
    class_weighting: Literal["none", "median_frequency", "sqrt_median_frequency"] = field(
        "none", "loss weights per class: none, median_frequency (SegNet's class balancing) or its square root "
                "(a milder balance: rare classes gain less, common ones lose less)")
    augment: bool = field(True, "training augmentation: horizontal flip, zoom 1-max_scale and crop, image and mask together")
    max_scale: float = field(1.25, "largest zoom factor of the augmentation", minimum=1)
    colour_jitter: float = field(
        0.0, "training augmentation of the image alone: brightness by up to this fraction of the range, contrast and "
             "saturation by up to 1 +- 2x this, hue by up to this / 4 of the circle (0: off)", minimum=0, maximum=0.5)
    void_names: tuple[str, ...] = field(
        ("void", "unlabelled", "unlabeled", "ignore"), "class names taken as the void label (in no loss or metric)")
    classes_file: Optional[str] = field(None, "folder: class list (default PATH/class_dict.csv): name,r,g,b per line")
    holdout_groups: tuple[str, ...] = field(
        (), "folder: validate on these whole groups of images (CamVid: the drives 0001TP, 0006R0, 0016E5), "
            "train on all other groups; the train and val splits are pooled first, test is untouched")
    train_on_validation: bool = field(
        False, "folder: train on the train and val splits together (the final model once settings are chosen, as "
               "the SegNet paper did); val is still scored, on images trained on")
    group_pattern: str = field(
        GROUP_PATTERN, "folder: regular expression matched at the start of each image's file name (suffix left "
                       "out); its match, or its first capture group, is the image's group. Default: up to the first _")
    train_examples: int = field(5000, "shapes: training scenes generated", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test scenes each", minimum=1)

    def validate(self):
        if self.image_size is not None and len(self.image_size) not in (1, 2):
            raise UsageError("image_size: expected SIDE or HEIGHT,WIDTH")
        if len(self.crop_size) > 2:
            raise UsageError("crop_size: expected SIDE or HEIGHT,WIDTH (or nothing: whole images)")
        if self.stage_widths and len(self.stage_widths) != SEGNET_BASIC_DEPTH + 1:
            raise UsageError(f"stage_widths: SegNet-Basic takes {SEGNET_BASIC_DEPTH + 1} widths (4 encoders, the last "
                             f"decoder), or none; got {len(self.stage_widths)}")


def _size(config, default) -> list[int]:
    if config.image_size is None:
        return list(default)
    return list(config.image_size) * 2 if len(config.image_size) == 1 else list(config.image_size)


class SegmentationTask(Task):
    """Semantic segmentation (SegNet-Basic, SegNet, U-Net), scored by mean IoU."""

    name = "segmentation"
    Config = SegmentationConfig
    monitor = "val_mean_iou"
    monitor_mode = "max"
    cpu_bfloat16 = True  # accuracy checked under mixed_bfloat16: docs/tasks/segmentation.md
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size"}
    serving_outputs = {
        "mask": "tf.int32 [N, H, W]: class id per pixel at the input's own size "
                "(a batch of different sizes is padded to the largest with -1)",
        "png_bytes": "tf.string [N]: the mask as a colour PNG (class colours), at the input's size",
        "panel_bytes": "tf.string [N]: PNG of input | colour mask side by side",
    }
    folder_layout = (
        "PATH/train/*.png|jpg with labels in PATH/trainannot/ (or train_labels/, train_masks/), same file "
        "name (a _L, _label or _mask suffix is allowed); likewise val/ (or validation/) and test/ with "
        "valannot/, testannot/; or split lists PATH/train.txt, val.txt, test.txt of 'image label' path "
        "pairs; or PATH/images/ + PATH/labels/ split 80/10/10 by file name. No val: 10% of train; no test: "
        "the val split is the test split. --set holdout_groups=G1,G2: validation is instead the train and "
        "val images whose file names start with group G1 or G2 (G1_*.png: group_pattern), training all others; "
        "--set train_on_validation=true: train on train and val (the final model). "
        "Labels: 1-channel PNGs of class ids, or RGB PNGs in the class "
        "colours. Classes: PATH/class_dict.csv (or --set classes_file=): 'name,r,g,b' per line in id order; "
        "a class named void/unlabelled is ignored."
    )

    # -- data: each loader returns per split a dataset of (uint8 image, uint8 mask) ----------
    def load_registered(self):  # --dataset shapes
        import tensorflow as tf

        self._check_no_folder_settings()
        shapes = self.source.load()
        height, width = _size(self.config, (64, 64))
        if height != width:
            raise UsageError("shapes scenes are square: give image_size as one side")
        self.info.update(class_names=list(shapes.MASK_CLASS_NAMES), colours=[list(c) for c in shapes.MASK_COLOURS],
                         image_size=[height, width])
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        out = {}
        for split in SPLITS:
            data = shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=height)
            out[split] = tf.data.Dataset.from_tensor_slices((data["image"], data["mask"]))
        return out

    def load_tfds(self):
        import tensorflow as tf

        if not self.source.name.split("/")[0].startswith("oxford_iiit_pet"):
            raise UsageError(f"segmentation reads tfds:oxford_iiit_pet (trimaps), not tfds:{self.source.name}; "
                             "use folder:PATH for other data")
        self._check_no_folder_settings()
        datasets, _info = load_tfds(self.source)
        size = _size(self.config, (128, 128))
        self.info.update(class_names=list(PET_CLASSES), colours=[list(c) for c in PET_COLOURS], image_size=size)
        trimap = tf.constant(PET_TRIMAP + (VOID,) * (256 - len(PET_TRIMAP)), tf.uint8)

        def prepare(example):
            image = tf.image.resize(tf.cast(example["image"], tf.float32), size)
            mask = tf.image.resize(example["segmentation_mask"], size, method="nearest")[..., 0]
            mask = tf.gather(trimap, tf.cast(mask, tf.int32))
            return tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8), mask

        return {s: ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).cache() for s, ds in datasets.items()}

    def _check_no_folder_settings(self):
        if self.config.holdout_groups:
            raise UsageError(f"holdout_groups: groups are file-name prefixes of folder: data; --dataset "
                             f"{self.source} has no files")
        if self.config.train_on_validation:
            raise UsageError(f"train_on_validation: for folder: data; --dataset {self.source} has its own splits")

    def load_folder(self):
        import tensorflow as tf

        arrays = read_folder(self.source.path, self.config, _size, VOID)
        self.info.update(arrays.pop("info"))
        return {s: tf.data.Dataset.from_tensor_slices(arrays[s]) for s in SPLITS}

    def prepare_datasets(self, splits):
        """Class weights from the training masks, augmentation of the training split, then batching."""
        import tensorflow as tf

        self.info["class_weights"] = self._class_weights(splits["train"])
        examples = int(splits["train"].cardinality())
        self.info["train_examples"] = examples if examples >= 0 else None  # unknown: a constant rate
        crop = self._crop_size()
        if crop and (crop[0] > self.info["image_size"][0] or crop[1] > self.info["image_size"][1]):
            raise UsageError(f"crop_size {crop[0]},{crop[1]} is larger than the images the model sees "
                             f"(image_size {self.info['image_size'][0]},{self.info['image_size'][1]})")
        out = {}
        for split in SPLITS:
            dataset = splits[split]
            if split == "train" and (self.config.augment or crop):
                dataset = dataset.map(self._augment, num_parallel_calls=tf.data.AUTOTUNE)
            out[split] = self.batch(dataset, split)
        return out

    def _crop_size(self) -> list[int]:
        """The training crop's [height, width], or [] for whole images."""
        crop = list(self.config.crop_size)
        return crop * 2 if len(crop) == 1 else crop

    def _class_weights(self, train_dataset) -> list[float]:
        """SegNet's median frequency balancing: weight_c = median(freq) / freq_c, with freq_c the
        pixels of class c over the pixels of the training images where c appears."""
        num_classes = len(self.info["class_names"])
        if self.config.class_weighting == "none":
            return [1.0] * num_classes
        pixels = np.zeros(num_classes, np.float64)
        image_pixels = np.zeros(num_classes, np.float64)
        for masks in train_dataset.map(lambda image, mask: mask).batch(32).as_numpy_iterator():
            # One bincount for the batch: image i's ids are shifted by 256 * i, so each row counts one image.
            rows = masks.reshape(len(masks), -1).astype(np.int64) + 256 * np.arange(len(masks))[:, np.newaxis]
            counts = np.bincount(rows.ravel(), minlength=256 * len(masks)).reshape(len(masks), 256)[:, :num_classes]
            pixels += counts.sum(axis=0)
            image_pixels += (counts > 0).sum(axis=0) * masks[0].size
        frequency = np.divide(pixels, image_pixels, out=np.zeros_like(pixels), where=image_pixels > 0)
        median = np.median(frequency[frequency > 0])
        power = 0.5 if self.config.class_weighting == "sqrt_median_frequency" else 1.0
        return [round(float((median / f) ** power), 4) if f > 0 else 0.0 for f in frequency]

    def _augment(self, image, mask):
        """Flip, zoom in by up to max_scale and crop back (to crop_size when set): the same geometry for
        image and mask; then, with colour_jitter, the image's brightness, contrast, saturation and hue
        (another street's light). With augment off, only the crop."""
        import tensorflow as tf

        height, width = self._crop_size() or self.info["image_size"]

        def window(image, mask):  # the same random height x width window of both
            top = tf.random.uniform([], 0, tf.shape(image)[0] - height + 1, tf.int32)
            left = tf.random.uniform([], 0, tf.shape(image)[1] - width + 1, tf.int32)
            return image[top:top + height, left:left + width], mask[top:top + height, left:left + width]

        if not self.config.augment:
            image, mask = window(image, mask)
            return tf.ensure_shape(image, [height, width, 3]), tf.ensure_shape(mask, [height, width])
        flip = tf.random.uniform([]) < 0.5
        image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
        mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
        scale = tf.random.uniform([], 1.0, self.config.max_scale)
        new_size = tf.cast(tf.math.ceil(scale * tf.cast(tf.shape(image)[:2], tf.float32)), tf.int32)
        image = tf.image.resize(tf.cast(image, tf.float32), new_size)
        mask = tf.image.resize(mask[..., None], new_size, method="nearest")[..., 0]
        image, mask = window(image, mask)
        jitter = self.config.colour_jitter
        if jitter > 0:
            image = image / 255.0
            image = tf.image.random_brightness(image, jitter)
            image = tf.image.random_contrast(image, max(0.0, 1 - 2 * jitter), 1 + 2 * jitter)
            if image.shape[-1] == 3:
                image = tf.image.random_saturation(image, max(0.0, 1 - 2 * jitter), 1 + 2 * jitter)
                image = tf.image.random_hue(image, jitter / 4)
            image = image * 255.0
        image = tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)
        return tf.ensure_shape(image, [height, width, 3]), tf.ensure_shape(mask, [height, width])

    def batch(self, dataset, split, shuffle_buffer=5_000, map_batch=None, map_example=None):
        # uint8 until here (4x less memory in caches and shuffle buffers); the model rescales.
        import tensorflow as tf

        return super().batch(dataset, split, shuffle_buffer, map_example=map_example,
                             map_batch=lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)))

    # -- model ---------------------------------------------------------------
    def build_model(self):
        import keras
        from kerasapps_segmentation.losses import PixelCrossEntropy
        from kerasapps_segmentation.metrics import (MeanClassAccuracy, MeanIoU, PixelAccuracy)

        num_classes = len(self.info["class_names"])
        # TensorFlow's fused argmax pooling is faster, but XLA cannot compile it.
        model = self._network(fused_pooling=not self.jit_compile)
        self.iou_metric = MeanIoU(num_classes)
        model.compile(
            optimizer=keras.optimizers.Adam(self.scheduled_learning_rate(self.info.get("train_examples"))),
            loss=PixelCrossEntropy(self.info.get("class_weights") or [1.0] * num_classes),
            metrics=[PixelAccuracy(num_classes), MeanClassAccuracy(num_classes), self.iou_metric],
        )
        return model

    def _network(self, fused_pooling: bool, fixed_size: bool = False):
        """The uncompiled network of ``config.model``: for image_size inputs, or for any size when it
        trains on crops (``fixed_size``: image_size regardless, for the converters)."""
        import keras
        from kerasapps_segmentation import models

        cfg = self.config
        height, width = self.info["image_size"] if fixed_size or not cfg.crop_size else (None, None)
        num_classes = len(self.info["class_names"])
        inputs = keras.Input((height, width, 3), name="image")
        if cfg.model == "segnet_basic":
            outputs = models.segnet_basic(inputs, num_classes, cfg.width, cfg.kernel_size, SEGNET_BASIC_DEPTH,
                                          fused_pooling=fused_pooling, stage_widths=cfg.stage_widths)
        elif cfg.model == "segnet":
            outputs = models.segnet(inputs, num_classes, cfg.width, fused_pooling=fused_pooling)
        else:
            outputs = models.unet(inputs, num_classes, cfg.width)
        return keras.Model(inputs, outputs, name=cfg.model)

    # -- width compression (kerasapps compress) --------------------------------
    def compression_plan(self, model):
        """SegNet-Basic: every encoder (its BatchNormalization too), re-fitting the next encoder,
        and tied to the decoder whose output is unpooled with its pooling indices (that decoder
        must keep the same channels: each value goes back to the position its channel's argmax
        recorded), which re-fits the next decoder; the deepest encoder feeds the first decoder
        through its own unpooling; the last decoder re-fits the 1x1 classifier."""
        from kerasapps.api import CompressionPlan, PrunableGroup

        if self.config.model != "segnet_basic":
            raise UsageError(f"the {self.config.model} model cannot be compressed yet (segnet_basic can)")
        depth = SEGNET_BASIC_DEPTH
        groups = [PrunableGroup(f"encoder{i}_conv", consumer=f"encoder{i + 1}_conv", channelwise=(f"encoder{i}_bn",),
                                tied=(PrunableGroup(f"decoder{i + 1}_conv", consumer=f"decoder{i}_conv",
                                                    channelwise=(f"decoder{i + 1}_bn",)),))
                  for i in range(1, depth)]
        groups.append(PrunableGroup(f"encoder{depth}_conv", consumer=f"decoder{depth}_conv",
                                    channelwise=(f"encoder{depth}_bn",)))
        groups.append(PrunableGroup("decoder1_conv", consumer="logits", channelwise=("decoder1_bn",)))
        return CompressionPlan(tuple(groups), lambda widths: {"stage_widths": tuple(
            [widths[f"encoder{i}_conv"] for i in range(1, depth + 1)] + [widths["decoder1_conv"]])})

    # -- evaluation ----------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        """The compiled metrics, plus the per-class IoU table and the confusion matrix. On
        folder: data the figures are those of the served masks at the labels' own size (what a
        client scores); the model-size ones stay under "at_model_size"."""
        import tensorflow as tf
        from kerasapps_segmentation.metrics import (MeanClassAccuracy, MeanIoU, PixelAccuracy,
            per_class_iou)

        confusion = np.asarray(self.iou_metric.confusion.numpy())
        if self.source.kind == "folder" and "label_ids" in self.info:
            metrics["at_model_size"] = {name: metrics[name] for name in SCORES}
            confusion = self._served_confusion(model)
            scorers = {"pixel_accuracy": PixelAccuracy, "class_accuracy": MeanClassAccuracy, "mean_iou": MeanIoU}
            metrics.update({name: float(scorers[name].score(tf.constant(confusion))) for name in SCORES})
            metrics["scored_at"] = "own size, served masks"
        names = self.info["class_names"]
        table = dict(zip(names, per_class_iou(confusion)))
        print("per-class IoU (test):")
        for name, iou in table.items():
            print(f"  {name:<20} {'-' if iou is None else f'{iou:.4f}'}")
        metrics["per_class_iou"] = table
        metrics["confusion_matrix"] = confusion.astype(np.int64).tolist()
        return metrics

    def _served_confusion(self, model):
        """Confusion matrix of the serving function's masks on the test split's own files, through
        the network the export serves (its BatchNormalizations folded where they can be)."""
        import tensorflow as tf
        from kerasapps.api import fold_batch_normalization
        from kerasapps_segmentation.metrics import ConfusionMatrixMetric

        serve = self.serving_function(fold_batch_normalization(model))
        counts = ConfusionMatrixMetric(len(self.info["class_names"]))
        pairs = read_native(pathlib.Path(self.source.path), self.config, "test", self.info["label_ids"], VOID)
        while chunk := list(itertools.islice(pairs, self.config.batch_size)):
            masks = serve(tf.constant([image for image, _ in chunk]))["mask"].numpy()
            for (_, truth), mask in zip(chunk, masks):  # a mixed-size batch is padded: crop
                counts.update_state(truth, mask[: truth.shape[0], : truth.shape[1]])
        return counts.confusion.numpy()

    def _examples(self, model, dataset, count):
        images, masks = next(iter(dataset.unbatch().batch(count)))
        predicted = np.argmax(np.asarray(model.predict_on_batch(images)), axis=-1)
        return images.numpy().astype(np.uint8), masks.numpy(), predicted

    def describe_predictions(self, model, dataset, count=5):
        names = self.info["class_names"]
        images, masks, predicted = self._examples(model, dataset, count)

        def top(mask):
            counts = np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
            order = [c for c in np.argsort(-counts, kind="stable") if counts[c]][:3]
            return ", ".join(f"{names[c]} {counts[c] / counts.sum():.0%}" for c in order)

        lines = []
        for mask, guess in zip(masks, predicted):
            valid = mask != VOID
            accuracy = float((guess[valid] == mask[valid]).mean()) if valid.any() else float("nan")
            lines.append(f"pixel accuracy {accuracy:.3f}  true: {top(mask[valid])}  predicted: {top(guess)}")
        return lines

    def save_samples(self, model, dataset, directory, count=8):
        """PNG panels: image | ground truth | prediction (void shown black)."""
        palette = np.array(self.info["colours"] + [[0, 0, 0]] * (256 - len(self.info["colours"])), np.uint8)
        images, masks, predicted = self._examples(model, dataset, count)
        paths = []
        for i, (image, mask, guess) in enumerate(zip(images, masks, predicted)):
            gap = np.full((image.shape[0], 2, 3), 255, np.uint8)
            panel = np.concatenate([image, gap, palette[mask], gap, palette[guess]], axis=1)
            path = pathlib.Path(directory) / f"sample_{i:02d}.png"
            path.write_bytes(encode_png(panel))
            paths.append(str(path))
        return paths

    # -- serving -------------------------------------------------------------
    def serving_function(self, model):
        import tensorflow as tf

        size = self.info["image_size"]
        colours = tf.constant(self.info["colours"], tf.uint8)

        def prepare(image_bytes):
            image = decode_image(image_bytes)
            # Antialiased as the folder loader resized the training images: the same input either way.
            return tf.image.resize(image, size, antialias=True), tf.shape(image)[:2]

        def restore(args):
            # Probabilities back to the input's own size, then the class per pixel.
            probabilities, own_size, image_bytes = args
            mask = tf.argmax(tf.image.resize(probabilities, own_size), axis=-1, output_type=tf.int32)
            colour = tf.gather(colours, mask)
            panel = tf.concat([tf.cast(decode_image(image_bytes), tf.uint8), colour], axis=1)
            return tf.RaggedTensor.from_tensor(mask), to_png_bytes(colour), to_png_bytes(panel)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            images, sizes = tf.map_fn(prepare, image_bytes, fn_output_signature=(
                tf.TensorSpec(size + [3], tf.float32), tf.TensorSpec([2], tf.int32)))
            probabilities = tf.cast(model(images, training=False), tf.float32)
            masks, pngs, panels = tf.map_fn(restore, (probabilities, sizes, image_bytes), fn_output_signature=(
                tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1), tf.TensorSpec([], tf.string),
                tf.TensorSpec([], tf.string)))
            return {"mask": masks.to_tensor(default_value=-1), "png_bytes": pngs, "panel_bytes": panels}

        return serve

    def tensor_core(self, model):
        """The network rebuilt with the unfused argmax pooling and the trained weights copied:
        ``tf.nn.max_pool_with_argmax`` has no LiteRT builtin, the unfused path is made of ops that
        have one and gives the same results (tests/test_segmentation_layers.py)."""
        convertible = self._network(fused_pooling=False, fixed_size=True)  # image_size even when trained on crops
        convertible.set_weights(model.get_weights())
        core = super().tensor_core(convertible)
        height, width = self.info["image_size"]
        core.preprocessing = (f"decode the image (RGB), resize it to {height}x{width} (bilinear, antialiased); "
                              f"float32 pixel values 0..255, not rescaled (the model rescales); layout "
                              f"[N, {height}, {width}, 3] (NHWC), any batch size N")
        core.postprocessing = (f"class probabilities per pixel [N, {height}, {width}, classes] (softmax applied); the "
                               "class map is the argmax over the last axis (the SavedModel resizes the probabilities "
                               "to the image's own size first); void (255 in the labels) is no class")
        return core


__all__ = ["SegmentationConfig", "SegmentationTask", "VOID"]
