"""kerasapps plugin: image captioning (Show and Tell: CNN encoder + LSTM decoder), image
tagging with the captions' words (visual concepts), which pretrains captioning's encoder, and
image-text matching (two encoders into one space), which scores text-to-image.

Cheap to import: the model code in ``task.py``, ``tagging.py`` and ``matching.py`` loads only
when a task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "captioning",
            "kerasapps_captioning.task:CaptioningTask",
            "image captioning: CNN encoder + LSTM decoder (Show and Tell), beam search, BLEU",
        ),
        TaskSpec(
            "tagging",
            "kerasapps_captioning.tagging:TaggingTask",
            "image tagging with the words of its captions (visual concepts): a pretrained encoder for captioning",
        ),
        TaskSpec(
            "matching",
            "kerasapps_captioning.matching:MatchingTask",
            "image-text matching: image and text encoders into one space, contrastive loss (CLIP), retrieval",
        ),
    ]
