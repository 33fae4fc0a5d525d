"""SegNet-Basic's compression plan: each encoder tied to the decoder its pooling indices unpool, the
narrow network rebuilt from stage_widths and, with duplicated filters, computing the same function."""

import numpy as np
import pytest


def duplicate_halves(layer):
    """The second half of ``layer``'s output channels made copies of the first half."""
    values = layer.get_weights()
    half = values[0].shape[-1] // 2
    for value in values:
        value[..., half:] = value[..., :half]
    layer.set_weights(values)


def test_segnet_basic_plan_ties_each_encoder_to_the_decoder_it_unpools_and_keeps_the_function():
    import keras
    import tensorflow as tf

    from kerasapps.compression.surgery import (check_plan, choose_channels, flat_groups, measure_feature_covariances,
                                               narrow_weights, transfer_weights)
    from kerasapps_segmentation import models
    from kerasapps_segmentation.task import SegmentationConfig, SegmentationTask

    def build(stage_widths=()):
        inputs = keras.Input((16, 16, 3))
        return keras.Model(inputs, models.segnet_basic(inputs, 3, width=8, kernel_size=3, depth=4,
                                                       fused_pooling=False, stage_widths=stage_widths))

    keras.utils.set_random_seed(0)
    model = build()
    plan = SegmentationTask(SegmentationConfig()).compression_plan(model)
    check_plan(model, plan)
    assert [g.producer for g in flat_groups(plan)] == [
        "encoder1_conv", "decoder2_conv", "encoder2_conv", "decoder3_conv", "encoder3_conv", "decoder4_conv",
        "encoder4_conv", "decoder1_conv"]
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)) and layer.name != "logits":
            duplicate_halves(layer)
        if isinstance(layer, keras.layers.BatchNormalization):  # statistics of their own, not the identity
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma + 0.2, beta + 0.1, mean + 0.05, var + 0.5])
    images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(8))).batch(4)
    covariances = measure_feature_covariances(model, plan, data, samples=8)
    choices = choose_channels(model, plan, covariances, keep=0.5, ridge=1e-6)
    for encoder, decoder in (("encoder1_conv", "decoder2_conv"), ("encoder3_conv", "decoder4_conv")):
        assert choices[encoder].kept.tolist() == choices[decoder].kept.tolist()  # one set of channels for both
    overrides = plan.config_overrides({p: c.width for p, c in choices.items()})
    assert overrides == {"stage_widths": (4, 4, 4, 4, 4)}
    narrow = build(overrides["stage_widths"])
    transfer_weights(model, narrow, narrow_weights(model, plan, choices))
    np.testing.assert_allclose(narrow.predict_on_batch(images), model.predict_on_batch(images), atol=2e-4)
    # L1 keeps the same widths but drops the copies' share of each next layer's input: the answers change
    choices = choose_channels(model, plan, covariances, keep=0.5, method="l1")
    transfer_weights(model, narrow, narrow_weights(model, plan, choices))
    assert np.abs(narrow.predict_on_batch(images) - model.predict_on_batch(images)).max() > 1e-3


def test_stage_widths_must_name_every_stage():
    from kerasapps.api import UsageError
    from kerasapps.config import apply_overrides
    from kerasapps_segmentation.task import SegmentationConfig, SegmentationTask

    with pytest.raises(UsageError, match="SegNet-Basic takes 5 widths"):
        apply_overrides(SegmentationConfig(), {"stage_widths": "8,8"})
    with pytest.raises(UsageError, match="the unet model cannot be compressed yet"):
        SegmentationTask(SegmentationConfig(model="unet")).compression_plan(None)
