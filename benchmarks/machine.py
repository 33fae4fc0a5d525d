"""Names the machine a benchmark ran on (CPU model, cores, TensorFlow, GPU)."""

import os
import platform


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return (f"{cpu}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
            f"GPU: {', '.join(gpus) if gpus else 'none'}")
