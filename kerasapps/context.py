"""What the core tells a task about the run it is part of: :class:`RunContext`.

The runner decides these facts (from the strategy, the precision policy and the
command line) before the task is built, and hands them over once; a task reads
them and never sets them.

Example::

    context = RunContext(replicas=2, global_batch_size=64, seed=7)
    context.per_replica_batch_size   # 32
    task = MyTask(config, source, context=context)
    task.context.drop_remainder      # False: short batches are fine off TPUs
"""

from __future__ import annotations

import dataclasses
import pathlib


@dataclasses.dataclass(frozen=True)
class RunContext:
    """Runtime facts of one run, fixed before the task is built.

    Attributes:
        replicas: replicas in sync (devices x workers) the global batch is split across.
        global_batch_size: examples per training step, over all replicas (the config's ``batch_size``).
        per_replica_batch_size: ``global_batch_size // replicas``.
        drop_remainder: every batch must be full (static shapes: TPUs); a task's own
            ``Dataset.batch`` calls must pass it (``Task.batch`` does).
        precision: the Keras dtype policy of the run ("float32", "mixed_bfloat16", ...).
        jit_compile: the training and evaluation steps run compiled with XLA (a layer XLA
            cannot compile needs another implementation then).
        is_chief: this process writes the run's shared files (False on the other workers
            of a multi-worker run).
        workdir: the run's folder (``--workdir``).
        seed: the run's random seed (``--seed``).
    """

    replicas: int = 1
    global_batch_size: int = 64
    per_replica_batch_size: int | None = None
    drop_remainder: bool = False
    precision: str = "float32"
    jit_compile: bool = False
    is_chief: bool = True
    workdir: pathlib.Path | None = None
    seed: int = 0

    def __post_init__(self):
        if self.per_replica_batch_size is None:
            object.__setattr__(self, "per_replica_batch_size", max(1, self.global_batch_size // max(1, self.replicas)))
        if self.workdir is not None and not isinstance(self.workdir, pathlib.Path):
            object.__setattr__(self, "workdir", pathlib.Path(self.workdir))
