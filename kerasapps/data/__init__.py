"""Data shared by every task: ``--dataset`` specs and TFDS (``sources``), image codecs and image
folders (``images``), captioned-image folders (``captions``), text vocabularies (``text``),
stable splits (``splits``), link checks of ``folder:`` datasets (``folder_links``) and the
built-in ``shapes`` dataset (``shapes``).

A new ``--dataset`` kind is one entry in ``sources.DATASET_KINDS``.
"""

from kerasapps._moved import forward_old_names

# This package replaced the module kerasapps/data.py; its names keep working, with a warning.
__getattr__ = forward_old_names(__name__, "kerasapps.data", {
    **dict.fromkeys(["OFFLINE_HINT", "DatasetSource", "parse_dataset_spec", "load_tfds", "tfds_split_mapping"],
                    "kerasapps.data.sources"),
    "hash_split": "kerasapps.data.splits",
})
