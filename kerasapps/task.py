"""The task contract: what a plugin implements to become ``kerasapps run NAME``.

A task reads like a keras-io example with the boilerplate gone to the core:
data, model, metrics, serving, in that order.

Example (a complete task; see README "Writing a plugin")::

    @dataclasses.dataclass
    class TinyConfig(TaskConfig):
        epochs: int = field(2, "training epochs")

    class TinyTask(Task):
        name = "tiny"
        Config = TinyConfig
        monitor = "val_accuracy"

        def build_datasets(self):
            shapes = self.source.load()
            return {s: self.batch(tf.data.Dataset.from_tensor_slices(
                        (a := shapes.generate_arrays(s, 256))["image"], a["label"]), s)
                    for s in ("train", "validation", "test")}

        def build_model(self):
            model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
                                      keras.layers.Flatten(), keras.layers.Dense(24)])
            model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            return model
"""

from __future__ import annotations

from kerasapps.config import TaskConfig
from kerasapps.errors import UsageError

SPLITS = ("train", "validation", "test")


class Task:
    """Base class of every task. Subclass it, set the class attributes, override the builders.

    Class attributes:
        name: the task's name (as registered by its TaskSpec).
        Config: the config dataclass (a :class:`TaskConfig` subclass); its defaults
            are the recommended hyperparameters.
        default_dataset: the ``--dataset`` used when none is given.
        registered_datasets: the plugin-registered datasets (``--dataset NAME``) it can read.
        dataset_kinds: which ``--dataset`` kinds the task reads ("registered", "tfds", "folder").
        monitor, monitor_mode: the validation metric that picks the best checkpoint;
            ``monitor = None`` keeps the last epoch's weights (GANs, whose losses do
            not say which epoch is best).
        serving_inputs, serving_outputs: name -> description, shown by ``kerasapps info``.
        folder_layout: how ``folder:PATH`` must be laid out, shown by ``kerasapps info``.
        cpu_bfloat16: True once the task's accuracy has been checked under
            ``mixed_bfloat16``: then ``--precision auto`` uses it on CPUs with AMX-BF16
            units (bfloat16 matrix hardware), float32 on other CPUs.

    The core calls, in order: ``build_datasets`` (outside the strategy scope),
    ``build_model`` (inside it), then trains, ``evaluate``s, ``serving_function``
    for export and ``describe_predictions`` for the samples it prints.
    ``self.info`` is a JSON-able dict the task fills while building its data
    (class names, image size, ...); the core saves it in the workdir and restores
    it, so export and evaluation need no training data to rebuild the model.
    """

    name: str = ""
    Config: type = TaskConfig
    default_dataset: str = "shapes"
    registered_datasets: tuple = ("shapes",)
    dataset_kinds: tuple = ("registered", "tfds", "folder")
    monitor: str | None = "val_loss"
    monitor_mode: str = "min"
    serving_inputs: dict = {}
    serving_outputs: dict = {}
    folder_layout: str = ""
    cpu_bfloat16: bool = False

    def __init__(self, config=None, source=None, info: dict | None = None, seed: int = 0):
        self.config = config if config is not None else self.Config()
        self.source = source
        self.info = dict(info or {})
        self.seed = seed
        self.drop_remainder = False  # set by the runner where shapes must be static (TPU)
        self.jit_compile = False  # set by the runner: True when the model will run compiled with XLA
        if source is not None and source.kind not in self.dataset_kinds:
            raise UsageError(
                f"task {self.name!r} cannot read {source.kind} dataset {source.spec!r} "
                f"(it reads: {', '.join(self.dataset_kinds)})"
            )
        if source is not None and source.kind == "registered" and source.name not in self.registered_datasets:
            raise UsageError(
                f"task {self.name!r} cannot read dataset {source.name!r}; it reads "
                f"{', '.join(self.registered_datasets)}, tfds:NAME or folder:PATH (see `kerasapps info {self.name}`)"
            )

    # -- data --------------------------------------------------------------
    def build_datasets(self) -> dict:
        """Return ``{"train": ds, "validation": ds, "test": ds}``: batched, prefetched
        ``tf.data.Dataset``s of ``(inputs, targets)`` with the global batch size.
        Fill ``self.info`` with what the model needs to be rebuilt later."""
        raise NotImplementedError

    def batch(self, dataset, split: str, shuffle_buffer: int = 10_000, map_batch=None):
        """Shuffle (train only), batch, apply ``map_batch`` to each batch (e.g. a cast of
        compact uint8 examples), then prefetch, always last.

        Training drops a short last batch (reshuffled each epoch, so no example is left out
        for good): with several replicas it could leave one replica an empty batch, which
        TensorFlow 2.21's oneDNN convolution mishandles on CPU.
        """
        import tensorflow as tf

        drop_remainder = self.drop_remainder
        if split == "train":
            dataset = dataset.shuffle(shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
            examples = int(dataset.cardinality())
            drop_remainder = drop_remainder or not 0 <= examples < self.config.batch_size  # never zero batches
        dataset = dataset.batch(self.config.batch_size, drop_remainder=drop_remainder)
        if map_batch is not None:
            dataset = dataset.map(map_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    # -- model -------------------------------------------------------------
    def build_model(self):
        """Return a compiled ``keras.Model`` (called inside the strategy scope)."""
        raise NotImplementedError

    def build_training_state(self, model, batch) -> None:
        """Create every variable before the first distributed step (metrics, loss,
        optimizer), from one non-distributed batch. Override for models without
        ``call`` (GANs): build their optimizers here."""
        from kerasapps.engine import build_model_state

        build_model_state(model, batch)

    def training_callbacks(self, model, datasets, workdir) -> list:
        """Extra ``keras.callbacks.Callback``s of this task for a training run, e.g. a
        per-epoch picture of fixed validation examples. Every worker of a multi-worker
        run calls them (predicting may be collective); ``workdir`` is the run's folder
        on the chief and a scratch folder, removed at exit, on the others::

            def training_callbacks(self, model, datasets, workdir):
                return [SampleGrid(datasets["validation"], workdir / "progress")]
        """
        return []

    # -- evaluation --------------------------------------------------------
    def evaluate(self, trainer, dataset) -> dict:
        """Metrics on a held-out split. Default: the compiled metrics via the trainer."""
        return trainer.evaluate(dataset)

    def describe_predictions(self, model, dataset, count: int = 5) -> list[str]:
        """Human-readable lines for a few examples of ``dataset`` (printed by ``run``)."""
        return []

    def save_samples(self, model, dataset, directory, count: int = 8) -> list:
        """Write pictures of a few predictions (e.g. image | truth | prediction PNG panels)
        under ``directory`` (``<workdir>/samples`` on ``run``); return the paths written."""
        return []

    # -- serving -----------------------------------------------------------
    def serving_function(self, model):
        """Return a ``tf.function`` with a named input signature taking raw inputs
        (``*_bytes`` for encoded binaries, ``text`` for strings) and returning a
        dict of readable outputs. It becomes the SavedModel's ``serving_default``."""
        raise NotImplementedError

    def serving_resources(self) -> list:
        """Objects the serving function uses besides the model (e.g. a
        ``TextVectorization`` layer, whose lookup table must be saved with the
        SavedModel). The export tracks each one.

        Example::

            def serving_resources(self):
                return [self.vocabulary.vectorizer]
        """
        return []

    def export_assets(self) -> dict:
        """Extra JSON-able metadata exported as an asset with the SavedModel."""
        return dict(self.info)

    # -- description (no TensorFlow needed) --------------------------------
    @classmethod
    def describe(cls) -> dict:
        from kerasapps.config import describe_fields

        return {
            "name": cls.name,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "config": describe_fields(cls.Config),
            "dataset_kinds": list(cls.dataset_kinds),
            "folder_layout": cls.folder_layout,
            "monitor": cls.monitor,
            "serving_inputs": dict(cls.serving_inputs),
            "serving_outputs": dict(cls.serving_outputs),
        }


__all__ = ["SPLITS", "Task", "TaskConfig"]
