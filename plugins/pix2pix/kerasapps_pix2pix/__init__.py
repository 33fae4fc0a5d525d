"""kerasapps plugin: pix2pix (conditional GAN image-to-image translation, Isola et al. 2017).

Cheap to import: the model code in ``task.py`` loads only when the task runs.
"""

from kerasapps.api import TaskSpec, hookimpl


@hookimpl
def kerasapps_register_tasks():
    return [
        TaskSpec(
            "pix2pix",
            "kerasapps_pix2pix.task:Pix2PixTask",
            "image-to-image translation: U-Net generator + PatchGAN, GAN + 100 x L1; L1, PSNR, SSIM",
        )
    ]
