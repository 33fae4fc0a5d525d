"""The core's own plugin: registers the built-in ``shapes`` dataset.

It is registered through the same ``kerasapps`` entry-point group as every
other plugin (see setup.cfg), so ``-p no:builtin`` switches it off too.
"""

from kerasapps import hookimpl
from kerasapps.registry import DatasetSpec


@hookimpl
def kerasapps_register_datasets():
    return [
        DatasetSpec(
            "shapes",
            "kerasapps.data.shapes",
            "procedural scenes of coloured shapes: label, mask, captions; no download",
        )
    ]
