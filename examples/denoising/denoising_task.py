"""A kerasapps plugin in one module: remove Gaussian noise from images (a small DnCNN).

The network predicts the noise and subtracts it (Zhang et al. 2017's residual learning);
it is fully convolutional, so the SavedModel cleans PNG or JPEG images at their own size.
Its figure of merit is PSNR on held-out images, beside the noisy input's own PSNR: the
do-nothing baseline it must beat.
"""

import dataclasses

from kerasapps.api import SPLITS, Task, TaskConfig, TaskSpec, field, hookimpl

STRIDE = 1  # the network keeps the resolution; a U-Net would need a multiple of its total stride


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("denoising", "denoising_task:DenoisingTask", "image denoising (DnCNN), PSNR vs the noisy input")]


@dataclasses.dataclass
class DenoisingConfig(TaskConfig):
    epochs: int = field(4, "training epochs")
    batch_size: int = field(32, "global batch size")
    noise: float = field(0.1, "standard deviation of the Gaussian noise, images in [0, 1]")
    layers: int = field(5, "convolution layers")
    filters: int = field(32, "filters per layer")
    image_size: int = field(32, "training crops: side in pixels")
    train_examples: int = field(2000, "shapes: training scenes")
    eval_examples: int = field(200, "shapes or folder: validation and test images each")


class DenoisingTask(Task):
    """Image denoising: a DnCNN predicts the noise, scored by PSNR against the noisy input."""

    name = "denoising"
    Config = DenoisingConfig
    monitor, monitor_mode = "val_psnr", "max"
    data_fields = ("train_examples", "eval_examples")
    serving_inputs = {"image_bytes": "tf.string [N]: noisy PNG or JPEG images of any size"}
    serving_outputs = {"png_bytes": "tf.string [N]: the denoised images as PNG, at their own size"}
    folder_layout = "PATH/train, val, test/*.png|jpg, or images directly in PATH (split 80/10/10 by file name)"

    # -- data: clean images in [0, 1]; the noise is added in the pipeline ---------
    def load_registered(self):
        import tensorflow as tf

        shapes, size = self.source.load(), self.config.image_size
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        return {split: tf.data.Dataset.from_tensor_slices(
                    shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=size)["image"])
                for split in SPLITS}

    def load_folder(self):
        import tensorflow as tf

        from kerasapps.api import read_image, read_image_folder

        files = read_image_folder(self.source.path, layout=self.folder_layout)
        size = (self.config.image_size, self.config.image_size)
        return {split: tf.data.Dataset.from_tensor_slices([str(p) for p in files[split]]).map(
                    lambda path: tf.cast(tf.round(read_image(path, size)), tf.uint8)).cache() for split in SPLITS}

    def batch(self, dataset, split, shuffle_buffer=10_000, map_batch=None, map_example=None):
        import tensorflow as tf

        noise, seed = self.config.noise, self.seed

        def add_noise(index, image):
            clean = tf.cast(image, tf.float32) / 255.0
            # Fresh noise every epoch in training; the same noise at every evaluation.
            key = tf.stack([tf.cast(seed, tf.int64), index if split != "train" else tf.random.uniform(
                [], maxval=2**31, dtype=tf.int64)])
            noisy = clean + noise * tf.random.stateless_normal(tf.shape(clean), seed=key)
            return noisy, clean

        return super().batch(dataset.enumerate(), split, shuffle_buffer, map_example=add_noise)

    # -- model -------------------------------------------------------------------
    def build_model(self):
        import keras

        from kerasapps.api import PSNR, SSIM

        noisy = keras.Input((None, None, 3), name="noisy")
        x = noisy
        for i in range(self.config.layers - 1):
            x = keras.layers.Conv2D(self.config.filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        noise = keras.layers.Conv2D(3, 3, padding="same", name="noise", dtype="float32")(x)
        clean = keras.layers.Subtract(name="clean")([noisy, noise])
        model = keras.Model(noisy, clean, name="dncnn")
        model.compile(keras.optimizers.Adam(self.config.learning_rate), "mse", metrics=[PSNR(), SSIM()])
        return model

    # -- metrics: the model beside the noisy input itself ----------------------------
    def evaluate(self, model, dataset, metrics):
        from kerasapps.api import mean_image_quality

        baseline = mean_image_quality(dataset)
        return {**metrics, "noisy_psnr": baseline["psnr"], "noisy_ssim": baseline["ssim"],
                "psnr_gain_db": metrics["psnr"] - baseline["psnr"]}

    def describe_predictions(self, model, dataset, count=5):
        from kerasapps.api import image_quality

        noisy, clean = next(iter(dataset.unbatch().batch(count)))
        _, ours, _ = image_quality(model(noisy), clean)
        _, before, _ = image_quality(noisy, clean)
        return [f"PSNR {a:.2f} dB (noisy input {b:.2f} dB)" for a, b in zip(ours.numpy(), before.numpy())]

    # -- serving: PNG or JPEG in, PNG out, at the image's own size ----------------------
    def serving_function(self, model):
        import tensorflow as tf

        from kerasapps.api import crop_to, decode_image, pad_to_multiple, to_png_bytes

        def denoise(image_bytes):
            image, size = pad_to_multiple(decode_image(image_bytes), STRIDE)
            return to_png_bytes(crop_to(model(image[tf.newaxis] / 255.0)[0] * 255.0, size))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            return {"png_bytes": tf.map_fn(denoise, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}

        return serve
