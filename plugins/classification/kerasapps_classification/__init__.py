"""kerasapps plugin: image classification (LeNet-5, ResNet-20, a linear baseline).

Cheap to import: the task (``task.py``) and its networks (``models.py``) load only when the task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "classification",
            "kerasapps_classification.task:ClassificationTask",
            "image classification: LeNet-5 (default), ResNet-20, linear baseline",
        )
    ]
