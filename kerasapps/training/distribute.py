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


def check_tf_config(raw: str | None = None) -> dict:
    """Parse and check ``$TF_CONFIG`` (or ``raw``); return it, or raise a UsageError naming
    what is wrong. Each worker of a cluster gets the same ``cluster`` and its own ``task``::

        {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}
    """
    raw = os.environ.get("TF_CONFIG") if raw is None else raw
    if not raw:
        raise UsageError(
            "--strategy multi-worker needs the TF_CONFIG environment variable (cluster and task); "
            "to try it on this machine, use `kerasapps launch --workers N TASK`"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise UsageError('TF_CONFIG must be a JSON object with "cluster" and "task" keys')
    cluster, task = config["cluster"], config["task"]
    if not isinstance(cluster, dict) or not cluster:
        raise UsageError('TF_CONFIG "cluster" must map job names ("chief", "worker") to lists of "host:port"')
    for job, addresses in cluster.items():
        if job not in ("chief", "worker", "evaluator", "ps"):
            raise UsageError(f'TF_CONFIG cluster job {job!r} is unknown; use "chief" and "worker"')
        if job == "ps":
            raise UsageError('TF_CONFIG has "ps" jobs: parameter-server training is not supported; use "worker" jobs')
        if not isinstance(addresses, list) or not addresses:
            raise UsageError(f'TF_CONFIG cluster job {job!r} must be a non-empty list of "host:port"')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise UsageError(f'TF_CONFIG cluster job {job!r} has address {address!r}; expected "host:port"')
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UsageError('TF_CONFIG "task" must be an object with "type" and "index", e.g. {"type": "worker", "index": 0}')
    if task["type"] not in cluster:
        raise UsageError(f'TF_CONFIG task type {task["type"]!r} is not a job of the cluster ({", ".join(cluster)})')
    index = task["index"]
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise UsageError(
            f'TF_CONFIG task index {index!r} is out of range: job {task["type"]!r} has '
            f'{len(cluster[task["type"]])} address(es)'
        )
    return config


def tpu_strategy(tpu: str | None):
    """``TPUStrategy`` for ``--tpu NAME`` (a Cloud TPU name or grpc:// address) or ``local``
    (a TPU VM's own chips). ``None`` reads ``$TPU_NAME``, else ``local``.

    Connects to a remote TPU cluster, initialises the TPU system, and builds the
    strategy; a TPU that cannot be found is a UsageError that says what was tried.
    """
    import tensorflow as tf

    name = tpu or os.environ.get("TPU_NAME") or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        if name != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError, tf.errors.UnavailableError) as exc:
        raise UsageError(
            f"no TPU found for --tpu {name!r} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "on a TPU VM use --tpu local, elsewhere the Cloud TPU name; without a TPU use another --strategy"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def resolve_strategy(name: str = "auto", tpu: str | None = None):
    """Return the ``tf.distribute.Strategy`` for ``--strategy NAME``.

    ``auto``: a TPU if one is configured (``--tpu`` or ``$TPU_NAME``), else
    MirroredStrategy when there are several GPUs (or several virtual CPUs), else
    the default one-device strategy.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multi-worker":
        check_tf_config()
        # Before anything lists devices: collective ops must be configured at start-up.
        # They run over gRPC between the workers; on GPUs NCCL is chosen automatically.
        return tf.distribute.MultiWorkerMirroredStrategy()
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
    return tpu_strategy(tpu)


def _accelerator(strategy) -> str:
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: whatever TensorFlow places ops on
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return "gpu" if any("GPU" in d.upper() for d in devices) else "cpu"


def cpu_has_bf16_instructions(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bfloat16 products in hardware: AMX tiles (``amx_bf16``:
    Intel Sapphire Rapids and later) or AVX-512 bfloat16 dot products (``avx512_bf16``: Intel
    Cooper Lake and later, AMD Zen 4 and later). oneDNN then runs bfloat16 convolutions and
    matmuls faster than float32: on a 2-core AMD EPYC, SegNet-Basic on CamVid at 180x240 trains
    1.5x as fast, pix2pix 1.35x, ResNet-20 1.2x, and no task slower (docs/cluster.md).
    """
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


def resolve_precision(name: str, strategy, cpu_bfloat16: bool = False) -> str:
    """``auto`` is mixed_bfloat16 on TPU, mixed_float16 on GPU; on CPU, mixed_bfloat16 for a
    task that allows it (``cpu_bfloat16``) on a CPU with bfloat16 instructions
    (:func:`cpu_has_bf16_instructions`), else float32.

    Example: ``resolve_precision("auto", strategy, cpu_bfloat16=task.cpu_bfloat16)``.
    """
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    accelerator = _accelerator(strategy)
    if accelerator == "cpu":
        return "mixed_bfloat16" if cpu_bfloat16 and cpu_has_bf16_instructions() else "float32"
    return {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}[accelerator]


def resolve_jit_compile(flag: bool | None, strategy, xla_problem: str | None = None) -> bool:
    """XLA by default on GPU/TPU; off on CPU, where it measured slower for CNNs and
    fails under MirroredStrategy on logical CPU devices.

    ``xla_problem`` (a task config's :meth:`~kerasapps.config.TaskConfig.xla_problem`) is why
    this run's steps cannot be compiled: the default is then off everywhere, and ``--jit-compile``
    or a TPU (which compiles every step) is a UsageError naming it.

    Example: ``resolve_jit_compile(None, strategy, config.xla_problem())``.
    """
    accelerator = _accelerator(strategy)
    if xla_problem:
        if accelerator == "tpu":
            raise UsageError(f"this run cannot train on a TPU, which compiles every step with XLA: {xla_problem}")
        if flag:
            raise UsageError(f"--jit-compile: {xla_problem}; run without --jit-compile")
        if flag is None and accelerator != "cpu":
            print(f"note: XLA is off for this run (it is on by default on {accelerator.upper()}): {xla_problem}",
                  flush=True)
        return False
    if flag is not None:
        return flag
    return accelerator != "cpu"


def is_multi_worker(strategy) -> bool:
    """True when ``strategy`` spans several worker processes."""
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def worker_count(strategy) -> int:
    """Processes taking part in training (1 unless multi-worker)."""
    if not is_multi_worker(strategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)


def is_chief(strategy) -> bool:
    """True on the worker that writes final checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multi_worker(strategy):
        return True
    return _is_chief_task(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def tf_config_is_chief(config: dict) -> bool:
    """``is_chief`` from a checked TF_CONFIG, for decisions taken before the strategy exists.

    >>> tf_config_is_chief({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}})
    False
    """
    return _is_chief_task(config["task"]["type"], config["task"]["index"], config["cluster"])


def _is_chief_task(task_type, task_id, cluster: dict) -> bool:
    if task_type == "worker" and "chief" in cluster:
        return False  # with a chief job, every worker is a helper
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)
