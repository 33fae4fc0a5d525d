"""What the suite measures: one entry per task, each beside its plain-Keras reference script.

Adding a task = one :class:`TaskBench` in ``ENTRIES`` + ``benchmarks/reference/<name>.py``
(defining ``BATCH_SIZE`` and ``build(train_examples) -> (compiled model, tf.data dataset)``).
A task is benchmarked when its plugin is installed and its reference script exists;
the others are listed as "not yet benchmarked".
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Callable, Optional


def _shapes_generator(count: int) -> None:
    from kerasapps.data import shapes

    shapes.generate_arrays("train", count, seed=1, image_size=64)


def _phrasebook_generator(count: int) -> None:
    from kerasapps_translation import phrasebook

    phrasebook.generate("train", count, seed=1)


def image_serving_inputs(task, datasets, count: int = 32) -> list:
    """PNG bytes of the first test images (the serving signature decodes and resizes them)."""
    import tensorflow as tf

    x = next(iter(datasets["test"].unbatch().batch(count)))[0]
    images = x["image"] if isinstance(x, dict) else x
    images = tf.cast(tf.round(tf.clip_by_value(images, 0, 255)), tf.uint8)
    return [tf.io.encode_png(image).numpy() for image in images]


def text_serving_inputs(task, datasets, count: int = 32) -> list:
    return [s.encode("utf-8") for s in task.texts["test"][0][:count]]


def translation_fixed_shapes(worker):
    """The translation model rebuilt on inputs of the pipeline's mean trimmed lengths, for counting FLOPs."""
    import keras
    import numpy as np

    sources, targets = [], []
    for x, _, _ in worker.train_data.take(20):
        sources.append(x["source"].shape[1])
        targets.append(x["target_in"].shape[1])
    s, t = int(round(np.mean(sources))), int(round(np.mean(targets)))
    inputs = {"source": keras.Input((s,), dtype="int32", name="source"),
              "target_in": keras.Input((t,), dtype="int32", name="target_in")}
    from kerasapps_translation.models import SmoothedSparseCrossentropy

    with keras.saving.CustomObjectScope({"SmoothedSparseCrossentropy": SmoothedSparseCrossentropy}):
        return keras.models.clone_model(worker.model, input_tensors=inputs)


def pix2pix_serving_inputs(task, datasets, count: int = 32) -> list:
    """PNG bytes of the first test inputs (the colour-coded maps; the pipeline holds them in [-1, 1])."""
    import tensorflow as tf

    x = next(iter(datasets["test"].unbatch().batch(count)))[0]
    images = tf.cast(tf.round(tf.clip_by_value((x + 1.0) * 127.5, 0, 255)), tf.uint8)
    return [tf.io.encode_png(image).numpy() for image in images]


def text_to_image_serving_inputs(task, datasets, count: int = 32) -> dict:
    """One caption and one noise seed per call (the signature takes ``text`` and ``seed``)."""
    import numpy as np

    return {"text": [s.encode("utf-8") for s in task.captions["test"][:count]],
            "seed": np.arange(count, dtype=np.int64)[:len(task.captions["test"][:count])]}


def text_to_image_predict(worker):
    """``model.predict`` for the text-to-image GAN, which has no ``call``: a Keras model whose
    forward pass is the GAN's ``generate`` (text encoder, conditioning, generator), on test batches."""
    import keras

    class Generate(keras.Model):
        def __init__(self, gan):
            # float32 so that Keras does not cast z and eps to the bfloat16 compute dtype of a
            # mixed policy: the GAN's own layers cast where they compute.
            super().__init__(name="generate", dtype="float32")
            self.gan = gan

        def call(self, x):
            return self.gan.generate(x["tokens"], x["z"], x["eps"], training=False)

    x = next(iter(worker.run.datasets["test"]))
    return Generate(worker.model), {k: x[k] for k in ("tokens", "z", "eps")}


# Passes of each network in one GAN training step, forward and backward (in forward-pass
# units: 2 where the network's weights get gradients, 1 where only activation gradients
# flow through it, 0 under stop_gradient), read from the two train_steps.
PIX2PIX_PASSES = {  # G(x) once, D on (x, y) and (x, G(x)); D's tape: both D passes; G's: D(x, G(x)) and G
    "generator": (1, 2), "discriminator": (2, 4 + 1)}
TEXT_TO_IMAGE_PASSES = {
    # D step: encoder on the caption and the mismatched one (both trained), conditioning and G under
    # stop_gradient, D on real, fake and mismatched pairs (all trained); G step: the encoder again
    # (stop_gradient), conditioning and G (trained), D on the fakes (activation gradients only).
    "text_encoder": (3, 4), "conditioning": (2, 2), "generator": (2, 2), "discriminator": (4, 6 + 1)}


def _network_flops(model, name: str) -> float:
    from benchmarks.suite.flops import forward_flops

    network = getattr(model, name, None)
    if network is None and name == "conditioning":  # the reference's conditioning is one Dense layer
        inputs, units = model.ca_dense.kernel.shape
        return 2.0 * inputs * units
    return forward_flops(network)


def gan_flops(passes: dict):
    """FLOPs of a GAN from its networks, each counted as often as its train_step runs it."""
    def count(worker) -> dict:
        per_network = {name: _network_flops(worker.model, name) for name in passes}
        forward = sum(per_network[n] * f for n, (f, _) in passes.items())
        backward = sum(per_network[n] * b for n, (_, b) in passes.items())
        return {"forward_flops": forward, "train_flops": forward + backward,
                "flops_by_network": per_network}
    return count


@dataclasses.dataclass(frozen=True)
class TaskBench:
    name: str                       # the suite's name; the kerasapps task too unless ``task`` differs
    reference: str                  # benchmarks/reference/<reference>.py
    plugin_module: str              # importable when the plugin is installed
    examples: dict                  # mode -> training examples generated (both sides)
    tuned: dict                     # config overrides of the tuned row
    tuned_jit: bool                 # XLA in the tuned row
    tuned_why: str                  # one line: why these settings
    serving_inputs: Callable = image_serving_inputs
    generator: Optional[Callable] = None
    generator_name: str = ""
    fixed_shape_model: Optional[Callable] = None
    eval_examples: int = 128
    conv_heavy: bool = False
    bound: str = ""                 # what limits its utilisation, in one line
    task: str = ""                  # the `kerasapps run` task name, when it differs from ``name``
    flops: Optional[Callable] = None          # worker -> {"forward_flops", "train_flops", ...} (GANs)
    predict_model: Optional[Callable] = None  # worker -> (Keras model, inputs) for the predict figures

    @property
    def task_name(self) -> str:
        return self.task or self.name

    def size_overrides(self, examples: int) -> dict:
        return {"train_examples": examples, "eval_examples": self.eval_examples}

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec(self.plugin_module) is None:
            return False, f"plugin {self.plugin_module} not installed"
        if importlib.util.find_spec(f"benchmarks.reference.{self.reference}") is None:
            return False, f"no reference script benchmarks/reference/{self.reference}.py yet"
        return True, ""


ENTRIES = {e.name: e for e in [
    TaskBench("classification", "classification", "kerasapps_classification",
              examples={"tiny": 256, "quick": 1500, "full": 8000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (slower for small CNNs on CPU)",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64)", conv_heavy=True,
              bound="conv1 (3 input channels: 75 MACs per output) and conv2 are small for oneDNN's kernels; "
                    "bias/ReLU/pooling/Adam are element-wise and memory-bound"),
    TaskBench("translation", "translation", "kerasapps_translation",
              examples={"tiny": 1024, "quick": 1500, "full": 8000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (batches are cut to their longest sentence, so every "
                        "new length recompiles: measured 0.35x in a quick run)",
              serving_inputs=text_serving_inputs, generator=_phrasebook_generator,
              bound="LSTM time steps run one after another: each is a [64 x 256] x [256 x 1024] matmul plus "
                    "element-wise gates, too small to fill 2 cores, with per-op dispatch in the while loop",
              generator_name="phrasebook.generate", fixed_shape_model=translation_fixed_shapes),
    TaskBench("captioning", "captioning", "kerasapps_captioning",
              examples={"tiny": 512, "quick": 1200, "full": 6000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (its CNN encoder is slower under XLA on CPU: measured 0.24x "
                        "with XLA in a quick run)",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64, with captions)",
              bound="the CNN encoder (its convolutions and batch norm over 64x64 to 8x8 maps; kerasapps runs the "
                    "batch norm through TensorFlow's fused kernel, the plain script through Keras's separate ops) "
                    "and the LSTM's 18 sequential small matmuls (batch 64 x 256 units)"),
    TaskBench("segmentation", "segmentation", "kerasapps_segmentation",
              examples={"tiny": 256, "quick": 400, "full": 2000},
              tuned={"steps_per_execution": 2}, tuned_jit=False,
              tuned_why="steps_per_execution 2 (a step is ~1 s: more gains nothing); no XLA",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64, with masks)",
              conv_heavy=True, eval_examples=64,
              bound="64-channel 3x3 convolutions at 64x64 are the FLOPs, but the argmax pooling, the unpooling "
                    "(scatter_nd) and batch norm are memory-bound, mostly single-threaded ops over the same large maps"),
    TaskBench("pix2pix", "pix2pix", "kerasapps_pix2pix",
              examples={"tiny": 128, "quick": 250, "full": 1000},
              tuned={"steps_per_execution": 8}, tuned_jit=False,
              tuned_why="steps_per_execution 8; no XLA (not faster on CPU in a quick check: 0.45-1.04x on a "
                        "shared machine, warm-up 21 s against 9 s)",
              serving_inputs=pix2pix_serving_inputs, generator=_shapes_generator,
              generator_name="shapes.generate_arrays (64x64, with masks)", flops=gan_flops(PIX2PIX_PASSES),
              conv_heavy=True, bound="G (190 MFLOP, two thirds in the decoder's transposed convolutions) and D (92 MFLOP, run twice) "
                    "put half their layers on maps of 8x8 or less at batch 16: small GEMMs for oneDNN; instance norm "
                    "(GroupNormalization), the activations and dropout are element-wise and memory-bound; two Adam "
                    "updates over 8.0M weights per step"),
    TaskBench("text_to_image", "text_to_image", "kerasapps_text_to_image", task="text-to-image",
              examples={"tiny": 128, "quick": 250, "full": 1000},
              tuned={"steps_per_execution": 8}, tuned_jit=False,
              tuned_why="steps_per_execution 8; no XLA (slower on CPU: measured 0.65x in a quick check)",
              serving_inputs=text_to_image_serving_inputs, generator=_shapes_generator,
              generator_name="shapes.generate_arrays (64x64, with captions)", flops=gan_flops(TEXT_TO_IMAGE_PASSES),
              predict_model=text_to_image_predict, conv_heavy=True, bound="the generator's 3x3 convolutions at 32x32 and 64x64 have 16 channels (144 MACs per output, "
                    "low arithmetic intensity) and are two thirds of the FLOPs; nearest upsampling, batch norm and ReLU "
                    "over those maps and D's layer norms are element-wise and memory-bound; the BiLSTM text encoder "
                    "runs 16 sequential steps three times a step; two Adam updates per step"),
]}
