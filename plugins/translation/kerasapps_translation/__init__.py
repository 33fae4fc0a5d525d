"""kerasapps plugin: translation (GNMT-style LSTM encoder-decoder with attention) and the
built-in ``phrasebook`` English-to-Japanese dataset.

Cheap to import: the model code in ``task.py`` loads only when the task runs.
"""

from kerasapps.api import DatasetSpec, TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "translation",
            "kerasapps_translation.task:TranslationTask",
            "translation: LSTM encoder-decoder with attention (GNMT's core), beam search, BLEU",
        )
    ]


@hookimpl
def kerasapps_register_datasets():
    return [
        DatasetSpec(
            "phrasebook",
            "kerasapps_translation.phrasebook",
            "generated English-to-Japanese sentence pairs (SVO -> SOV with particles); no download",
        )
    ]
