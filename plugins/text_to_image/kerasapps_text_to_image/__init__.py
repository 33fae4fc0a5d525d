"""kerasapps plugin: text to image (StackGAN stage I + GAN-CLS matching-aware discriminator).

Cheap to import: the model code in ``task.py`` loads only when the task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "text-to-image",
            "kerasapps_text_to_image.task:TextToImageTask",
            "text to image: BiLSTM text encoder + StackGAN stage I conditional GAN, judged semantic accuracy",
        )
    ]
