"""Choosing the ``tf.distribute`` strategy, numeric precision and XLA for a run.

Example::

    strategy = resolve_strategy("auto")
    with strategy.scope():
        model = task.build_model()
"""

from __future__ import annotations

import json
import os

from kerasapps.errors import UsageError

STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
VIRTUAL_CPUS_ENV = "KERASAPPS_VIRTUAL_CPUS"


def configure_virtual_cpus() -> int:
    """Split the CPU into ``$KERASAPPS_VIRTUAL_CPUS`` logical devices (must run before TF starts).

    This lets ``--strategy mirrored`` run several replicas on a machine without
    GPUs: for trying distribution and for tests, not for speed.
    """
    import tensorflow as tf

    value = os.environ.get(VIRTUAL_CPUS_ENV)
    if not value:
        return 1
    try:
        count = int(value)
        if count < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"{VIRTUAL_CPUS_ENV} must be a positive integer, got {value!r}") from None
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    return count


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UsageError("--strategy multi-worker needs the TF_CONFIG environment variable (cluster and task)")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise UsageError('TF_CONFIG must be a JSON object with "cluster" and "task" keys')


def resolve_strategy(name: str = "auto", tpu: str | None = None):
    """Return the ``tf.distribute.Strategy`` for ``--strategy NAME``.

    ``auto``: a TPU if one is configured (``--tpu`` or ``$TPU_NAME``), else
    MirroredStrategy when there are several GPUs (or several virtual CPUs), else
    the default one-device strategy.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        if tpu or os.environ.get("TPU_NAME"):
            name = "tpu"
        elif len(gpus) > 1 or (not gpus and len(cpus) > 1):
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or os.environ.get("TPU_NAME") or "local")
    if tpu != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _accelerator(strategy) -> str:
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: whatever TensorFlow places ops on
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return "gpu" if any("GPU" in d.upper() for d in devices) else "cpu"


def resolve_precision(name: str, strategy) -> str:
    """``auto`` is mixed_bfloat16 on TPU, mixed_float16 on GPU, float32 on CPU."""
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    return {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(_accelerator(strategy), "float32")


def resolve_jit_compile(flag: bool | None, strategy) -> bool:
    """XLA by default on GPU/TPU; off on CPU, where it measured slower for CNNs and
    fails under MirroredStrategy on logical CPU devices."""
    if flag is not None:
        return flag
    return _accelerator(strategy) != "cpu"


def is_chief(strategy) -> bool:
    """True on the worker that writes final checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)
