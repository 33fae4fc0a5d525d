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
Text: :class:`Vocabulary`, :func:`build_vocabulary`, :func:`standardize`, :func:`standardize_texts`,
    the special tokens and ids (``PAD``, ``UNK``, ``START``, ``END``, ``*_ID``), :func:`decode`,
    :func:`greedy_decode`, :func:`beam_search`, :func:`corpus_bleu`, :func:`corpus_cider`,
    :func:`sentence_cider`, :func:`exact_match_rate`.
Paired embeddings: :func:`recall_at_k`, :func:`r_precision` (text-to-image, as AttnGAN reports it),
    :func:`frechet_distance` (FID's formula, in any network's features).
Layers: :class:`ForgetGateBias`, :class:`FusedBatchNormalization`.
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
    "DatasetSource": "kerasapps.data:DatasetSource",
    "load_tfds": "kerasapps.data:load_tfds",
    "hash_split": "kerasapps.data:hash_split",
    "read_captions_folder": "kerasapps.captions:read_captions_folder",
    "CaptionsFolder": "kerasapps.captions:CaptionsFolder",
    "CAPTIONS_FOLDER_LAYOUT": "kerasapps.captions:LAYOUT",
    "shapes": "kerasapps.datasets.shapes",
    "check_image_file": "kerasapps.images:check_image_file",
    "check_image_files": "kerasapps.images:check_image_files",
    "list_image_files": "kerasapps.images:list_image_files",
    "probe_image": "kerasapps.images:probe_image",
    "read_image": "kerasapps.images:read_image",
    "decode_image": "kerasapps.images:decode_image",
    "decode_images": "kerasapps.images:decode_images",
    "encode_png": "kerasapps.images:encode_png",
    "pad_to_multiple": "kerasapps.images:pad_to_multiple",
    "crop_to": "kerasapps.images:crop_to",
    "to_png_bytes": "kerasapps.images:to_png_bytes",
    "read_image_folder": "kerasapps.images:read_image_folder",
    "split_folders": "kerasapps.images:split_folders",
    "split_by_hash": "kerasapps.images:split_by_hash",
    "split_by_group": "kerasapps.images:split_by_group",
    "group_of": "kerasapps.images:group_of",
    "GROUP_PATTERN": "kerasapps.images:GROUP_PATTERN",
    "PSNR": "kerasapps.quality:PSNR",
    "SSIM": "kerasapps.quality:SSIM",
    "ImageL1": "kerasapps.quality:ImageL1",
    "image_quality": "kerasapps.quality:image_quality",
    "mean_image_quality": "kerasapps.quality:mean_image_quality",
    "to_unit_range": "kerasapps.quality:to_unit_range",
    "IMAGE_SUFFIXES": "kerasapps.images:IMAGE_SUFFIXES",
    "Vocabulary": "kerasapps.text:Vocabulary",
    "build_vocabulary": "kerasapps.text:build_vocabulary",
    "standardize": "kerasapps.text:standardize",
    "standardize_texts": "kerasapps.text:standardize_texts",
    "PAD": "kerasapps.text:PAD",
    "UNK": "kerasapps.text:UNK",
    "START": "kerasapps.text:START",
    "END": "kerasapps.text:END",
    "PAD_ID": "kerasapps.text:PAD_ID",
    "UNK_ID": "kerasapps.text:UNK_ID",
    "START_ID": "kerasapps.text:START_ID",
    "END_ID": "kerasapps.text:END_ID",
    "decode": "kerasapps.decoding:decode",
    "greedy_decode": "kerasapps.decoding:greedy_decode",
    "beam_search": "kerasapps.decoding:beam_search",
    "corpus_bleu": "kerasapps.bleu:corpus_bleu",
    "corpus_cider": "kerasapps.cider:corpus_cider",
    "sentence_cider": "kerasapps.cider:sentence_cider",
    "exact_match_rate": "kerasapps.bleu:exact_match_rate",
    "recall_at_k": "kerasapps.retrieval:recall_at_k",
    "r_precision": "kerasapps.retrieval:r_precision",
    "frechet_distance": "kerasapps.retrieval:frechet_distance",
    "ForgetGateBias": "kerasapps.layers:ForgetGateBias",
    "FusedBatchNormalization": "kerasapps.layers:FusedBatchNormalization",
    "read_trained_run": "kerasapps.transfer:read_trained_run",
    "TrainedRun": "kerasapps.transfer:TrainedRun",
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
