"""FGSM and PGD as graph code: L-infinity attacks on a batch, given a loss of (inputs, labels).

Both move each input value by at most ``epsilon`` (in the inputs' own units: 0..255 pixels for
kerasapps' image models) and keep it inside ``pixel_range``. They take the loss as a function,
so any task can use them, and they run inside ``tf.function``, ``strategy.run`` and a model's
``train_step`` (adversarial training).

Example::

    def loss_fn(images, labels):
        return model.compute_loss(y=labels, y_pred=model(images, training=False))

    adversarial = pgd(loss_fn, images, labels, epsilon=0.3 * 255, steps=40, step_size=0.01 * 255)
"""

from __future__ import annotations

import tensorflow as tf

PIXEL_RANGE = (0.0, 255.0)


def input_gradient(loss_fn, inputs, labels):
    """The gradient of ``loss_fn(inputs, labels)`` with respect to ``inputs``.

    Example::

        grad = input_gradient(loss_fn, images, labels)   # same shape as images

    Returns a float tensor shaped like ``inputs`` (zeros where the loss does not depend on them).
    """
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = loss_fn(inputs, labels)
    gradient = tape.gradient(loss, inputs)
    return tf.zeros_like(inputs) if gradient is None else tf.cast(gradient, inputs.dtype)


def fgsm(loss_fn, inputs, labels, epsilon, pixel_range=PIXEL_RANGE, targeted: bool = False):
    """The fast gradient sign method (Goodfellow et al. 2015): one step of ``epsilon`` along the
    sign of the loss's input gradient (against it when ``targeted``: ``labels`` are then the
    targets), clipped to ``pixel_range``.

    Example::

        adversarial = fgsm(loss_fn, images, labels, epsilon=8.0)   # 8 levels of 0..255

    Returns ``clip(inputs + epsilon * sign(gradient), *pixel_range)`` (minus for targeted).
    """
    inputs = tf.convert_to_tensor(inputs)
    epsilon = tf.cast(epsilon, inputs.dtype)
    direction = tf.sign(input_gradient(loss_fn, inputs, labels))
    if targeted:
        direction = -direction
    return tf.clip_by_value(inputs + epsilon * direction, pixel_range[0], pixel_range[1])


def pgd(loss_fn, inputs, labels, epsilon, steps: int = 10, step_size=None, pixel_range=PIXEL_RANGE,
        targeted: bool = False, random_start: bool = True, seed: int | None = None):
    """Projected gradient descent in the L-infinity ball (Madry et al. 2018): a uniform random
    start inside the ball, then ``steps`` signed-gradient steps of ``step_size`` (default
    2.5 * epsilon / steps, Madry's rule), each projected back onto the ball around ``inputs``
    and the ``pixel_range``. ``steps`` is a Python int or a scalar tensor (a ``tf.while_loop``).

    Example::

        adversarial = pgd(loss_fn, images, labels, epsilon=0.3 * 255, steps=40, step_size=0.01 * 255)

    Returns the adversarial batch: within ``epsilon`` of ``inputs`` and inside ``pixel_range``.
    """
    inputs = tf.convert_to_tensor(inputs)
    epsilon = tf.cast(epsilon, inputs.dtype)
    if step_size is None:
        step_size = 2.5 * epsilon / tf.cast(steps, inputs.dtype)
    step_size = tf.cast(step_size, inputs.dtype)
    low, high = tf.maximum(inputs - epsilon, pixel_range[0]), tf.minimum(inputs + epsilon, pixel_range[1])
    start = inputs
    if random_start:
        start = inputs + tf.random.uniform(tf.shape(inputs), -1.0, 1.0, dtype=inputs.dtype, seed=seed) * epsilon
    start = tf.clip_by_value(start, low, high)
    sign = -1.0 if targeted else 1.0

    def step(i, adversarial):
        moved = adversarial + sign * step_size * tf.sign(input_gradient(loss_fn, adversarial, labels))
        return i + 1, tf.clip_by_value(moved, low, high)

    _, adversarial = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), start),
                                   shape_invariants=(tf.TensorShape([]), inputs.shape))
    return adversarial


ATTACKS = {"fgsm": fgsm, "pgd": pgd}

__all__ = ["ATTACKS", "PIXEL_RANGE", "fgsm", "input_gradient", "pgd"]
