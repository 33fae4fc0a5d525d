"""pix2pix's adversarial step: losses against a hand-computed case, the same update on 2 replicas
as on one device, and a resumed run that restores both optimizers."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("kerasapps_pix2pix")

from kerasapps.training.engine import ResumableBackup, Trainer  # noqa: E402
from kerasapps_pix2pix.models import Pix2Pix, patchgan_discriminator, unet_generator  # noqa: E402


def tiny_model(seed=1, size=8, dropout=0.0):
    """8x8 images: 3 U-Net levels, a 2x2 PatchGAN map; small enough to trace in seconds."""
    keras.utils.set_random_seed(seed)
    model = Pix2Pix(unet_generator(size, 4, dropout), patchgan_discriminator(size, 4, layers=1))
    model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return model


def pairs(n, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
            rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"))


def test_networks_have_the_papers_shapes():
    generator = unet_generator(256, 64)
    assert generator.output_shape == (None, 256, 256, 3)
    downs = [l for l in generator.layers if l.name.startswith("down") and l.name.endswith("_conv")]
    assert [l.filters for l in downs] == [64, 128, 256, 512, 512, 512, 512, 512]  # C64 ... C512, 8 blocks to 1x1
    assert sum(isinstance(l, keras.layers.Dropout) for l in generator.layers) == 3
    assert patchgan_discriminator(256, 64).output_shape == (None, 30, 30, 1)  # 70x70 PatchGAN on 256x256


def test_losses_match_a_hand_computed_case():
    """Zero last layers: every patch logit is 0 (BCE = ln 2 for either label) and the
    generator outputs tanh(0) = 0, so L1 = mean |target|."""
    model = tiny_model()
    for layer in (model.discriminator.get_layer("patch_logits"), model.generator.get_layer("output_conv")):
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    inputs, targets = pairs(4)
    logs = {k: float(v) for k, v in model.train_step((tf.constant(inputs), tf.constant(targets))).items()}
    l1 = np.abs(targets).mean()
    assert logs["d_loss"] == pytest.approx(math.log(2), rel=1e-5)  # (ln 2 + ln 2) / 2
    assert logs["gan_loss"] == pytest.approx(math.log(2), rel=1e-5)
    assert logs["l1_loss"] == pytest.approx(l1, rel=1e-5)
    assert logs["g_loss"] == pytest.approx(math.log(2) + 100 * l1, rel=1e-5)
    assert int(model.optimizer.iterations) == int(model.discriminator_optimizer.iterations) == 1


EQUIVALENCE_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from kerasapps.training.engine import Trainer
    from test_pix2pix_training import pairs, tiny_model

    def after_one_step(strategy, batch):
        data = tf.data.Dataset.from_tensor_slices(pairs(batch)).batch(batch)  # one global batch
        with strategy.scope():
            model = tiny_model()
        # state_built: compile() built both optimizers in the scope, as in a kerasapps run.
        history = Trainer(model, strategy, state_built=True).fit(data, epochs=1, progress_bar=False).history
        return {"generator": [w.tolist() for w in model.generator.get_weights()],
                "discriminator": [w.tolist() for w in model.discriminator.get_weights()],
                "logs": {k: v[0] for k, v in history.items()}, "replicas": strategy.num_replicas_in_sync}

    # A global batch of 3: replicas get 2 and 1 examples, so only division by the
    # global batch (not a replica's own, nor per-replica x replicas) gives equal steps.
    # (An even split would not do: Adam's first step is blind to a uniform loss scale.)
    print(json.dumps([after_one_step(tf.distribute.OneDeviceStrategy("/cpu:0"), 3),
                      after_one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 3)]))
""")


@pytest.mark.slow
def test_one_step_on_two_replicas_equals_one_step_on_one_device():
    here = os.path.dirname(__file__)
    result = subprocess.run([sys.executable, "-c", EQUIVALENCE_SCRIPT], capture_output=True, text=True, cwd=here,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=here), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    initial = tiny_model()
    one, two = json.loads(result.stdout.strip().splitlines()[-1])
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for key in ("d_loss", "g_loss", "gan_loss", "l1_loss"):  # the true means, not a replica's share
        assert two["logs"][key] == pytest.approx(one["logs"][key], rel=1e-5), key
    for network in ("generator", "discriminator"):
        start = getattr(initial, network).get_weights()
        moved = 0
        for a, b, w0 in zip(one[network], two[network], start):
            np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-4, atol=1e-6)
            moved += int(not np.allclose(np.array(a), w0))
        assert moved > 0, f"{network} did not train"  # the comparison is of a real update


class Interrupt(keras.callbacks.Callback):
    """Snapshot every variable of both optimizers after epoch 1; stop half-way through epoch 2."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.snapshot = {name: [np.array(v) for v in opt.variables] for name, opt in optimizers(self.model)}

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1 and hasattr(self, "snapshot"):
            raise KeyboardInterrupt


def optimizers(model):
    return (("generator", model.generator_optimizer), ("discriminator", model.discriminator_optimizer))


def test_resume_after_an_interrupted_epoch_restores_both_optimizers(tmp_path):
    data = tf.data.Dataset.from_tensor_slices(pairs(12)).batch(4)  # 3 steps per epoch
    model = tiny_model()
    interrupt = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, tf.distribute.get_strategy(), state_built=True).fit(
            data, epochs=3, callbacks=[ResumableBackup(tmp_path, model), interrupt], progress_bar=False)
    assert int(model.discriminator_optimizer.iterations) == 5  # 3 + 2 steps: epoch 2 was cut short

    again = tiny_model(seed=2)  # other weights, untouched optimizers
    backup = ResumableBackup(tmp_path, again, write=False)
    assert backup.restore() == 1
    for name, optimizer in optimizers(again):
        assert int(optimizer.iterations) == 3, name
        restored = [np.array(v) for v in optimizer.variables]
        assert len(restored) == len(interrupt.snapshot[name]) > 10  # iterations, lr, Adam moments
        for got, want in zip(restored, interrupt.snapshot[name]):
            np.testing.assert_array_equal(got, want)
    Trainer(again, tf.distribute.get_strategy(), state_built=True).fit(
        data, epochs=2, initial_epoch=1, progress_bar=False)
    assert int(again.generator_optimizer.iterations) == int(again.discriminator_optimizer.iterations) == 6
