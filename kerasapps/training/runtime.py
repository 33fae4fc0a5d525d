"""Where and how a run computes: strategy, precision, XLA, seed, which process is the chief,
the scratch folder of the other workers and the barrier they all pass before exiting.

Example::

    runtime = Runtime.start(strategy="auto", tpu=None, precision="auto", jit_compile=None, seed=0,
                            workdir=pathlib.Path("runs/x"))
    with runtime.strategy.scope():
        model = build()
    runtime.barrier()
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pathlib
import shutil


def writes_shared_files(strategy_name: str) -> bool:
    """False on the non-chief workers of a multi-worker run (decided from TF_CONFIG, before the
    strategy exists): only the chief writes the workdir's shared files."""
    if strategy_name != "multi-worker":
        return True
    from kerasapps.training import distribute

    return distribute.tf_config_is_chief(distribute.check_tf_config())


@dataclasses.dataclass
class Runtime:
    """The distribution and numerics of a run, set up once by :meth:`start`."""

    strategy: object
    precision: str
    jit_compile: bool
    is_chief: bool
    multi_worker: bool
    scratch_dir: pathlib.Path  # the workdir on the chief; a private folder, removed at exit, on the others
    virtual_cpus: object = None
    _barrier: object = None

    @classmethod
    def start(cls, *, strategy: str, tpu, precision: str, jit_compile, seed: int, workdir, cpu_bfloat16=False,
              xla_problem: str | None = None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from kerasapps.training import distribute

        virtual_cpus = distribute.configure_virtual_cpus()
        import keras

        keras.utils.set_random_seed(int(seed))
        resolved_strategy = distribute.resolve_strategy(strategy, tpu)
        policy = distribute.resolve_precision(precision, resolved_strategy, cpu_bfloat16=cpu_bfloat16)
        keras.mixed_precision.set_global_policy(policy)
        is_chief = distribute.is_chief(resolved_strategy)
        scratch_dir = pathlib.Path(workdir)
        if not is_chief:
            # TensorFlow's multi-worker rule: only the chief writes final files; the others
            # write what they must (checkpoints are collective) to scratch, removed at exit.
            resolver = resolved_strategy.cluster_resolver
            # One fixed name per worker: a rerun clears what a killed worker left behind.
            scratch_dir = scratch_dir / f".{resolver.task_type}-{resolver.task_id}-scratch"
            shutil.rmtree(scratch_dir, ignore_errors=True)
            scratch_dir.mkdir(parents=True)
            atexit.register(shutil.rmtree, scratch_dir, True)
        return cls(
            strategy=resolved_strategy,
            precision=policy,
            jit_compile=distribute.resolve_jit_compile(jit_compile, resolved_strategy, xla_problem),
            is_chief=is_chief,
            multi_worker=distribute.is_multi_worker(resolved_strategy),
            scratch_dir=scratch_dir,
            virtual_cpus=virtual_cpus,
        )

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def needs_static_shapes(self) -> bool:
        """TPUs compile for static shapes: every batch full."""
        import tensorflow as tf

        return isinstance(self.strategy, tf.distribute.TPUStrategy)

    def describe(self) -> dict:
        """The figures metrics.json records about the runtime."""
        from kerasapps.training import distribute

        return {
            # (TensorFlow's class behind MultiWorkerMirroredStrategy is CollectiveAllReduceStrategy.)
            "strategy": "MultiWorkerMirroredStrategy" if self.multi_worker else type(self.strategy).__name__,
            "workers": distribute.worker_count(self.strategy),
            "replicas": self.replicas,
            "precision": self.precision,
            "jit_compile": self.jit_compile,
        }

    def barrier(self) -> None:
        """Wait for every worker (multi-worker runs only): the chief hosts the cluster's coordination
        service, and a chief that leaves first makes the others' last calls fail."""
        if not self.multi_worker:
            return
        import tensorflow as tf

        if self._barrier is None:
            strategy = self.strategy

            @tf.function
            def barrier():
                return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

            self._barrier = barrier
        self._barrier()


__all__ = ["Runtime", "writes_shared_files"]
