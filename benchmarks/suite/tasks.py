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
    from kerasapps.datasets import shapes

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
    from kerasapps_translation import task as translation

    with keras.saving.CustomObjectScope({"SmoothedSparseCrossentropy": translation.SmoothedSparseCrossentropy}):
        return keras.models.clone_model(worker.model, input_tensors=inputs)


@dataclasses.dataclass(frozen=True)
class TaskBench:
    name: str                       # the kerasapps task
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
              examples={"tiny": 256, "quick": 3000, "full": 8000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (slower for small CNNs on CPU)",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64)", conv_heavy=True,
              bound="conv1 (3 input channels: 75 MACs per output) and conv2 are small for oneDNN's float32 kernels; "
                    "bias/ReLU/pooling/Adam are element-wise and memory-bound; float32 only (the AMX bf16 units idle)"),
    TaskBench("translation", "translation", "kerasapps_translation",
              examples={"tiny": 1024, "quick": 4000, "full": 8000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (batches are cut to their longest sentence, so every "
                        "new length recompiles: measured 0.35x in a quick run)",
              serving_inputs=text_serving_inputs, generator=_phrasebook_generator,
              bound="LSTM time steps run one after another: each is a [64 x 256] x [256 x 1024] matmul plus "
                    "element-wise gates, too small to fill 2 cores, with per-op dispatch in the while loop",
              generator_name="phrasebook.generate", fixed_shape_model=translation_fixed_shapes),
    TaskBench("captioning", "captioning", "kerasapps_captioning",
              examples={"tiny": 512, "quick": 3000, "full": 6000},
              tuned={"steps_per_execution": 16}, tuned_jit=False,
              tuned_why="steps_per_execution 16; no XLA (its CNN encoder is slower under XLA on CPU: measured 0.24x "
                        "with XLA in a quick run)",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64, with captions)",
              bound="the LSTM's 18 sequential small matmuls (batch 64 x 256 units) and the 17 x vocabulary "
                    "output layer; the small CNN encoder is a minor share"),
    TaskBench("segmentation", "segmentation", "kerasapps_segmentation",
              examples={"tiny": 256, "quick": 800, "full": 2000},
              tuned={"steps_per_execution": 2}, tuned_jit=False,
              tuned_why="steps_per_execution 2 (a step is ~1 s: more gains nothing); no XLA",
              generator=_shapes_generator, generator_name="shapes.generate_arrays (64x64, with masks)",
              conv_heavy=True, eval_examples=64,
              bound="64-channel 3x3 convolutions at 64x64 are the FLOPs, but the argmax pooling/unpooling "
                    "(reshape, transpose, gather, scatter_nd) and batch norm are memory-bound, mostly single-threaded "
                    "ops over the same large maps; float32 only"),
    # Being written now; measured as soon as the plugin is installed and its reference script exists.
    TaskBench("pix2pix", "pix2pix", "kerasapps_pix2pix",
              examples={"tiny": 128, "quick": 400, "full": 1000},
              tuned={"steps_per_execution": 8}, tuned_jit=False, tuned_why="steps_per_execution 8",
              conv_heavy=True),
    TaskBench("text_to_image", "text_to_image", "kerasapps_text_to_image",
              examples={"tiny": 128, "quick": 400, "full": 1000},
              tuned={"steps_per_execution": 8}, tuned_jit=False, tuned_why="steps_per_execution 8",
              conv_heavy=True),
]}
