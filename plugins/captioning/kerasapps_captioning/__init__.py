"""kerasapps plugin: image captioning (Show and Tell: CNN encoder + LSTM decoder).

Cheap to import: the model code in ``task.py`` loads only when the task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "captioning",
            "kerasapps_captioning.task:CaptioningTask",
            "image captioning: CNN encoder + LSTM decoder (Show and Tell), beam search, BLEU",
        )
    ]
