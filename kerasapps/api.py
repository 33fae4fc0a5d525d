"""The one import surface for plugin authors: everything a task plugin needs, and nothing else.

What is here is supported: it changes only with a deprecation period. Everything else
in ``kerasapps`` is the core's own and may change. Importing this module is cheap
(``kerasapps list`` must not load TensorFlow): the helpers that need TensorFlow are
imported on first use.

Contract and registration:
    :class:`Task`, :class:`TaskConfig`, :func:`field`, :data:`SPLITS`, :class:`RunContext`,
    :data:`hookimpl`, :class:`TaskSpec`, :class:`DatasetSpec`, :class:`UsageError`.
Data: :func:`load_tfds`, :class:`DatasetSource`, :func:`read_image_folder`, :func:`split_folders`,
    :func:`hash_split` (one key -> its split's name, e.g. inside a ``tf.data`` filter of your own)
    and :func:`split_by_hash` (a list of items -> ``{split: items}``, by ``hash_split`` of a key of
    each), :func:`split_by_group` (whole groups of items, named by a file-name prefix, held out:
    ``(kept, held)``), :func:`group_of` (an item's group) and its default :data:`GROUP_PATTERN`,
    :func:`read_captions_folder`,
    :data:`CAPTIONS_FOLDER_LAYOUT`, ``shapes`` (the built-in dataset's module).
Images: :func:`check_image_file`, :func:`check_image_files`, :func:`list_image_files`,
    :func:`probe_image`, :func:`read_image`, :func:`encode_png`; in serving graphs
    :func:`decode_image` (native size or resized), :func:`decode_images`, :func:`pad_to_multiple`,
    :func:`crop_to`, :func:`to_png_bytes`.
Image quality: :class:`PSNR`, :class:`SSIM`, :class:`ImageL1` (Keras metrics), :func:`image_quality`,
    :func:`mean_image_quality`, :func:`to_unit_range`.
Text folders: :func:`read_text_folder` (one file per class, one sentence per line, split three
    ways) and :data:`TEXT_FOLDER_LAYOUT`, :func:`read_lines` (a UTF-8 file's lines; errors name the line).
Text: :class:`Vocabulary`, :func:`build_vocabulary`, :func:`standardize`, :func:`standardize_texts`,
    the special tokens and ids (``PAD``, ``UNK``, ``START``, ``END``, ``*_ID``), :func:`decode`,
    :func:`greedy_decode`, :func:`beam_search`, :func:`corpus_bleu`, :func:`corpus_cider`,
    :func:`sentence_cider`, :class:`CiderD` (one caption at a time against a fixed corpus's
    frequencies: a self-critical reward), :func:`exact_match_rate`.
Paired embeddings: :func:`recall_at_k`, :func:`r_precision` (text-to-image, as AttnGAN reports it),
    :func:`frechet_distance` (FID's formula, in any network's features).
Layers: :class:`ForgetGateBias`, :class:`FusedBatchNormalization`.
Adversarial examples: :func:`fgsm`, :func:`pgd`, :func:`input_gradient` (L-infinity attacks as graph
    code, on a loss of (inputs, labels)), :class:`AttackSurface` (what ``Task.attack_surface``
    returns: the image input, its pixel range, the loss, the score), :func:`default_attack_surface`.
LiteRT and ONNX exports: :class:`TensorCore` (what ``Task.tensor_core`` returns: the Keras model a
    converter takes, pixels in and scores out, with its pre- and post-processing described),
    :func:`default_tensor_core`.
Serving: :func:`fold_batch_normalization` (the network a SavedModel export serves: a task that
    scores its served outputs in-process scores them through it).
Width compression: :class:`CompressionPlan` (what ``Task.compression_plan`` returns) of
    :class:`PrunableGroup` s (a producer layer, its per-channel layers, the consumer re-fitted) and
    :class:`PrunableStream` s (channels several producers write and several layers read, at each
    :class:`StreamRead`: a residual network's stage).
Transfer between tasks: :func:`read_trained_run` (a trained run's folder) -> :class:`TrainedRun`
    (``build_model()``: its task's model with its weights).

Example (a plugin module: cheap to import, the task class lives in another module)::

    from kerasapps.api import TaskSpec, hookimpl

    @hookimpl
    def kerasapps_register_tasks():
        return [TaskSpec("denoising", "denoising_task:DenoisingTask", "remove noise from images")]
"""

from __future__ import annotations

import importlib

from kerasapps import hookimpl
from kerasapps.config import TaskConfig, field
from kerasapps.context import RunContext
from kerasapps.errors import UsageError
from kerasapps.registry import DatasetSpec, TaskSpec
from kerasapps.task import SPLITS, Task

# name -> "module:attribute" (or "module" for a module), imported on first use.
_LAZY = {
    "DatasetSource": "kerasapps.data.sources:DatasetSource",
    "load_tfds": "kerasapps.data.sources:load_tfds",
    "hash_split": "kerasapps.data.splits:hash_split",
    "read_captions_folder": "kerasapps.data.captions:read_captions_folder",
    "CaptionsFolder": "kerasapps.data.captions:CaptionsFolder",
    "CAPTIONS_FOLDER_LAYOUT": "kerasapps.data.captions:LAYOUT",
    "shapes": "kerasapps.data.shapes",
    "check_image_file": "kerasapps.data.images:check_image_file",
    "check_image_files": "kerasapps.data.images:check_image_files",
    "list_image_files": "kerasapps.data.images:list_image_files",
    "probe_image": "kerasapps.data.images:probe_image",
    "read_image": "kerasapps.data.images:read_image",
    "decode_image": "kerasapps.data.images:decode_image",
    "decode_images": "kerasapps.data.images:decode_images",
    "encode_png": "kerasapps.data.images:encode_png",
    "pad_to_multiple": "kerasapps.data.images:pad_to_multiple",
    "crop_to": "kerasapps.data.images:crop_to",
    "to_png_bytes": "kerasapps.data.images:to_png_bytes",
    "read_image_folder": "kerasapps.data.images:read_image_folder",
    "split_folders": "kerasapps.data.images:split_folders",
    "split_by_hash": "kerasapps.data.splits:split_by_hash",
    "split_by_group": "kerasapps.data.splits:split_by_group",
    "group_of": "kerasapps.data.splits:group_of",
    "GROUP_PATTERN": "kerasapps.data.splits:GROUP_PATTERN",
    "PSNR": "kerasapps.metrics.quality:PSNR",
    "SSIM": "kerasapps.metrics.quality:SSIM",
    "ImageL1": "kerasapps.metrics.quality:ImageL1",
    "image_quality": "kerasapps.metrics.quality:image_quality",
    "mean_image_quality": "kerasapps.metrics.quality:mean_image_quality",
    "to_unit_range": "kerasapps.metrics.quality:to_unit_range",
    "IMAGE_SUFFIXES": "kerasapps.data.images:IMAGE_SUFFIXES",
    "read_text_folder": "kerasapps.data.text_folder:read_text_folder",
    "read_lines": "kerasapps.data.text_folder:read_lines",
    "TEXT_FOLDER_LAYOUT": "kerasapps.data.text_folder:LAYOUT",
    "Vocabulary": "kerasapps.data.text:Vocabulary",
    "build_vocabulary": "kerasapps.data.text:build_vocabulary",
    "standardize": "kerasapps.data.text:standardize",
    "standardize_texts": "kerasapps.data.text:standardize_texts",
    "PAD": "kerasapps.data.text:PAD",
    "UNK": "kerasapps.data.text:UNK",
    "START": "kerasapps.data.text:START",
    "END": "kerasapps.data.text:END",
    "PAD_ID": "kerasapps.data.text:PAD_ID",
    "UNK_ID": "kerasapps.data.text:UNK_ID",
    "START_ID": "kerasapps.data.text:START_ID",
    "END_ID": "kerasapps.data.text:END_ID",
    "decode": "kerasapps.modeling.decoding:decode",
    "greedy_decode": "kerasapps.modeling.decoding:greedy_decode",
    "beam_search": "kerasapps.modeling.decoding:beam_search",
    "corpus_bleu": "kerasapps.metrics.bleu:corpus_bleu",
    "corpus_cider": "kerasapps.metrics.cider:corpus_cider",
    "sentence_cider": "kerasapps.metrics.cider:sentence_cider",
    "CiderD": "kerasapps.metrics.cider:CiderD",
    "exact_match_rate": "kerasapps.metrics.bleu:exact_match_rate",
    "recall_at_k": "kerasapps.metrics.retrieval:recall_at_k",
    "r_precision": "kerasapps.metrics.retrieval:r_precision",
    "frechet_distance": "kerasapps.metrics.retrieval:frechet_distance",
    "ForgetGateBias": "kerasapps.modeling.layers:ForgetGateBias",
    "FusedBatchNormalization": "kerasapps.modeling.layers:FusedBatchNormalization",
    "fgsm": "kerasapps.adversarial.attacks:fgsm",
    "pgd": "kerasapps.adversarial.attacks:pgd",
    "input_gradient": "kerasapps.adversarial.attacks:input_gradient",
    "AttackSurface": "kerasapps.adversarial.surface:AttackSurface",
    "default_attack_surface": "kerasapps.adversarial.surface:default_attack_surface",
    "TensorCore": "kerasapps.serving.formats:TensorCore",
    "default_tensor_core": "kerasapps.serving.formats:default_tensor_core",
    "fold_batch_normalization": "kerasapps.serving.folding:fold_batch_normalization",
    "CompressionPlan": "kerasapps.compression.plan:CompressionPlan",
    "PrunableGroup": "kerasapps.compression.plan:PrunableGroup",
    "PrunableStream": "kerasapps.compression.plan:PrunableStream",
    "StreamRead": "kerasapps.compression.plan:StreamRead",
    "read_trained_run": "kerasapps.training.transfer:read_trained_run",
    "TrainedRun": "kerasapps.training.transfer:TrainedRun",
}


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kerasapps.api' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = importlib.import_module(module_name)
    if attribute:
        value = getattr(value, attribute)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["DatasetSpec", "RunContext", "SPLITS", "Task", "TaskConfig", "TaskSpec", "UsageError", "field",
           "hookimpl", *_LAZY]
