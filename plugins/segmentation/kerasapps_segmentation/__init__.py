"""kerasapps plugin: semantic segmentation (SegNet-Basic, SegNet, U-Net).

Cheap to import: the model code in ``task.py`` loads only when the task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "segmentation",
            "kerasapps_segmentation.task:SegmentationTask",
            "semantic segmentation: SegNet-Basic (default), SegNet (VGG16 depth), U-Net; mIoU",
        )
    ]
