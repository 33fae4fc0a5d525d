"""The benchmark suite runs and reports sane figures (``--tiny``: classification only, seconds).

No speed is asserted: the figures depend on the machine and its load.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_tiny_suite_writes_results(tmp_path):
    from benchmarks.results_sections import replace_section

    out = tmp_path / "RESULTS.md"
    replace_section(out, "serve_load", "## Serving under load\n\nwritten by another script")  # the suite keeps it
    subprocess.run([sys.executable, "-m", "benchmarks", "--tiny", "--out", str(out)], cwd=ROOT, check=True,
                   timeout=300, capture_output=True)
    text = out.read_text()
    assert text.count("written by another script") == 1 and text.index("## Memory") < text.index("## Serving under load")
    assert "**Machine:**" in text and "TensorFlow" in text and "cores" in text
    assert "**Load:**" in text and "load average before" in text  # idle or shared, the load is stated
    results = json.loads(out.with_suffix(".json").read_text())
    task = results["tasks"]["classification"]
    sides = task["sides"]
    for side in ("reference", "same"):
        assert sides[side]["params"] == sides["reference"]["params"]  # the reference is the same model
        figures = [sides[side]["train"]["median"], sides[side]["pipeline"]["examples_per_second"]]
        assert all(math.isfinite(v) and v > 0 for v in figures)
    assert math.isfinite(task["ratios"]["same"]["median"]) and task["ratios"]["same"]["median"] > 0
    assert sides["same"]["forward_flops"] > 0
    serving = task["serving"]
    for key in ("p50_ms", "p99_ms", "batch32_examples_per_second"):
        assert math.isfinite(serving[key]) and serving[key] > 0
    assert all(math.isfinite(v) for v in _numbers(task))
    for line in ("## Training throughput", "## Utilisation", "## Input pipeline", "## Serving", "## Memory"):
        assert line in text


def test_gan_references_mirror_the_plugins():
    """The pix2pix and text-to-image reference scripts build the plugins' default networks
    (same parameter counts, network by network), written independently of them."""
    import pytest

    pytest.importorskip("kerasapps_pix2pix")
    pytest.importorskip("kerasapps_text_to_image")
    code = r"""
import sys
sys.path.insert(0, ".")
from benchmarks.reference import pix2pix, text_to_image
from kerasapps.data import shapes
from kerasapps.data.text import Vocabulary, build_vocabulary
from kerasapps_pix2pix.models import patchgan_discriminator, unet_generator
from kerasapps_pix2pix.task import Pix2PixConfig
from kerasapps_text_to_image.models import build_gan
from kerasapps_text_to_image.task import TextToImageConfig

c = Pix2PixConfig()
ref = pix2pix.build_model()
assert pix2pix.BATCH_SIZE == c.batch_size and pix2pix.SIZE == c.image_size
assert ref.generator.count_params() == unet_generator(c.image_size, c.generator_filters, c.dropout,
                                                      c.normalization).count_params()
assert ref.discriminator.count_params() == patchgan_discriminator(
    c.image_size, c.discriminator_filters, c.discriminator_layers, c.normalization).count_params()

c = TextToImageConfig()
captions = shapes.generate_arrays("train", 64, seed=0, image_size=c.image_size)["captions"]
vocab = Vocabulary(build_vocabulary((s for caps in captions for s in caps), c.min_word_count), c.max_caption_length)
ref = text_to_image.build(64)[0]
ka = build_gan(vocab.size, c.max_caption_length, c.image_size, embed_dim=c.embed_dim, lstm_units=c.lstm_units,
               z_dim=c.z_dim, cond_dim=c.cond_dim, generator_filters=c.generator_filters,
               discriminator_filters=c.discriminator_filters)
assert text_to_image.BATCH_SIZE == c.batch_size and text_to_image.SIZE == c.image_size
for name in ("text_encoder", "generator", "discriminator"):
    assert getattr(ref, name).count_params() == getattr(ka, name).count_params(), name
assert ref.ca_dense.count_params() == ka.conditioning.count_params()
assert ref.count_params() == ka.count_params()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_captioning_step_options_measures_a_positive_step_time():
    from benchmarks.captioning_step_options import measure

    row = measure("float32", True, steps=2)
    assert row["policy"] == "float32" and row["unroll"] is True
    assert 0 < row["cpu_ms_per_step"] < 60_000 and 0 < row["wall_ms_per_step"] < 60_000
