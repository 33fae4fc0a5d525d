"""The task contract: what a plugin implements to become ``kerasapps run NAME``.

A task reads like a keras-io example with the boilerplate gone to the core:
data, model, metrics, serving, in that order.

A task class must implement ``build_model`` and ``serving_function``, and read its
data through ``load_registered`` / ``load_tfds`` / ``load_folder`` (the ``--dataset``
kinds it supports are the loaders it has; the core calls the one the ``--dataset`` names
and hands what it returns to ``prepare_datasets``, which batches each split). The
registry refuses a class that lacks one, naming what is missing, before any data is read.

Example (a complete task; see docs/plugins.md)::

    @dataclasses.dataclass
    class TinyConfig(TaskConfig):
        epochs: int = field(2, "training epochs")

    class TinyTask(Task):
        name = "tiny"
        Config = TinyConfig
        monitor = "val_accuracy"

        def load_registered(self):  # --dataset shapes
            shapes = self.source.load()
            return {s: tf.data.Dataset.from_tensor_slices(
                        ((a := shapes.generate_arrays(s, 256))["image"], a["label"]))
                    for s in SPLITS}

        def build_model(self):
            model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
                                      keras.layers.Flatten(), keras.layers.Dense(24)])
            model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            return model

        def serving_function(self, model):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
            def serve(image_bytes):
                return {"scores": model(decode_images(image_bytes, (64, 64)))}

            return serve
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import warnings

from kerasapps.config import TaskConfig
from kerasapps.context import RunContext
from kerasapps.data.sources import DATASET_KINDS as _KINDS
from kerasapps.data.sources import cannot_read, dataset_choices
from kerasapps.errors import PluginDeprecationWarning, UsageError

SPLITS = ("train", "validation", "test")
DATASET_KINDS = tuple(_KINDS)  # the --dataset kinds, in the order info shows them


class Task(abc.ABC):
    """Base class of every task. Subclass it, set the class attributes, override the builders.

    Class attributes:
        name: the task's name (as registered by its TaskSpec).
        Config: the config dataclass (a :class:`TaskConfig` subclass); its defaults
            are the recommended hyperparameters.
        default_dataset: the ``--dataset`` used when none is given.
        registered_datasets: the plugin-registered datasets (``--dataset NAME``) it can read.
        dataset_kinds: which ``--dataset`` kinds the task reads ("registered", "tfds", "folder");
            by default the kinds it has a ``load_KIND`` method for.
        monitor, monitor_mode: the validation metric that picks the best checkpoint;
            ``monitor = None`` keeps the last epoch's weights (GANs, whose losses do
            not say which epoch is best).
        serving_inputs, serving_outputs: name -> description, shown by ``kerasapps info``.
        folder_layout: how ``folder:PATH`` must be laid out, shown by ``kerasapps info``.
        data_fields: config fields that choose only how much data is read (example counts,
            say), not the model: changing them does not refuse resuming a run's backup.
        cpu_bfloat16: True once the task's accuracy has been checked under
            ``mixed_bfloat16``: then ``--precision auto`` uses it on CPUs with bfloat16
            instructions (AMX or AVX512_BF16), float32 on other CPUs.

    The core calls, in order: ``build_datasets`` (outside the strategy scope; by default
    ``load_KIND`` for the ``--dataset`` kind, then ``prepare_datasets``, which by default
    calls ``batch`` on each split),
    ``build_model`` (inside it), then trains, ``evaluate``s, ``serving_function``
    for export and ``describe_predictions`` for the samples it prints.
    ``self.context`` (a :class:`RunContext`) holds the run's facts (replicas, batch
    sizes, precision, XLA, seed ...), fixed before the task is built.
    ``self.info`` is a JSON-able dict the task fills while building its data
    (class names, image size, ...); the core saves it in the workdir and restores
    it, so export and evaluation need no training data to rebuild the model.
    A loader whose data has no test split of its own sets ``self.info["scored_split"]``
    to the split it scores in its place (``"validation"``): figures are labelled with it.
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
    data_fields: tuple = ()
    cpu_bfloat16: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The --dataset kinds a task reads are the loaders it has, unless it says otherwise
        # or reads its data its own way (its own build_datasets).
        if "dataset_kinds" not in cls.__dict__ and cls.build_datasets is Task.build_datasets:
            cls.dataset_kinds = tuple(kind for kind in _KINDS if callable(getattr(cls, f"load_{kind}", None)))
        # Said when the plugin's module is imported, before any data is read, not after training.
        for message in _deprecated_forms(cls):
            warnings.warn(message, PluginDeprecationWarning, stacklevel=3)

    def __init__(self, config=None, source=None, info: dict | None = None, seed: int | None = None,
                 context: RunContext | None = None):
        self.config = config if config is not None else self.Config()
        self.source = source
        self.info = dict(info or {})
        if context is None:
            context = RunContext(global_batch_size=self.config.batch_size, seed=seed or 0)
        elif seed is not None and seed != context.seed:
            context = dataclasses.replace(context, seed=seed)
        self.context = context
        if source is not None and (source.kind not in self.dataset_kinds or (
                source.kind == "registered" and source.name not in self.registered_datasets)):
            raise cannot_read(type(self), source.kind, source.spec)

    # -- run facts (read-only: the runner decides them) ----------------------
    @property
    def seed(self) -> int:
        return self.context.seed

    @property
    def drop_remainder(self) -> bool:
        """Every batch full (static shapes, TPUs): pass it to any ``Dataset.batch`` of your own."""
        return self.context.drop_remainder

    @property
    def jit_compile(self) -> bool:
        """True when the model will run compiled with XLA."""
        return self.context.jit_compile

    @classmethod
    def contract_problem(cls) -> str | None:
        """What the class lacks to be a task, beyond its abstract methods (None: nothing): no
        data loader, or a method the core could not call with the arguments it passes
        (found when the class is loaded, not when the call comes after training)."""
        if cls.build_datasets is Task.build_datasets and not any(
                callable(getattr(cls, f"load_{kind}", None)) for kind in _KINDS):
            return (f"class {cls.__name__} reads no data: it needs load_registered, load_tfds or load_folder "
                    "(or its own build_datasets)")
        if not (_accepts_context(cls) or _binds(cls, "__init__", 2, info=None, seed=0)):
            return (f"{cls.__name__}.__init__{_signature(cls, '__init__')} cannot take the core's call "
                    "(config, source, info=..., context=...) (see kerasapps.api.Task)")
        for name, count in _CORE_CALLS.items():
            if name not in _overridden(cls) or not callable(getattr(cls, name)) or _binds(cls, name, count):
                continue  # a loader set to None reads no such kind
            if name == "evaluate" and _binds(cls, name, 2):  # the previous release's evaluate(trainer, dataset)
                continue
            reference = getattr(Task, name, None)  # None: a load_KIND, called with no arguments
            expected = ", ".join(list(inspect.signature(reference).parameters)[1:count + 1]) if reference else ""
            return (f"{cls.__name__}.{name}{_signature(cls, name)} cannot take the core's call "
                    f"{name}({expected}) (see kerasapps.api.Task.{name})")
        return None

    # -- data --------------------------------------------------------------
    def build_datasets(self) -> dict:
        """Return ``{"train": ds, "validation": ds, "test": ds}``: batched, prefetched
        ``tf.data.Dataset``s of ``(inputs, targets)`` with the global batch size.
        Fill ``self.info`` with what the model needs to be rebuilt later.

        Default: ``load_KIND()`` for the ``--dataset`` kind (``load_registered``,
        ``load_tfds`` or ``load_folder``), then :meth:`prepare_datasets` on the three splits
        it returns. Prefer overriding those two; overriding this one still works (then pass
        ``self.drop_remainder`` to any ``Dataset.batch`` of your own).
        """
        loader = getattr(self, f"load_{self.source.kind}", None)
        if loader is None:  # refused by __init__ already unless dataset_kinds says otherwise
            raise UsageError(f"task {self.name!r} cannot read {self.source.kind} datasets")
        splits = loader()
        _check_splits(splits, f"{type(self).__name__}.load_{self.source.kind}")
        datasets = self.prepare_datasets(splits)
        _check_splits(datasets, f"{type(self).__name__}.prepare_datasets")
        return datasets

    def prepare_datasets(self, splits: dict) -> dict:
        """Turn what ``load_KIND`` returned, ``{"train": ..., "validation": ..., "test": ...}``,
        into the batched datasets the model trains and is evaluated on (same keys).
        Called by the core after the loader, whatever the ``--dataset`` kind, so work that
        is the same for every kind goes here: a vocabulary adapted to the training split,
        teacher forcing, augmentation of the training split.

        Default: :meth:`batch` on each split (the loaders then return datasets of single
        examples). A task that overrides it may have its loaders return anything it reads,
        texts or arrays say.

        Example (loaders returning ``(sources, targets)`` lists of texts per split: a
        vocabulary from the training targets, then teacher forcing)::

            def prepare_datasets(self, splits):
                self.info["vocabulary"] = build_vocabulary(splits["train"][1])
                return {split: self.batch(tf.data.Dataset.from_tensor_slices(splits[split]), split,
                                          map_example=self.teacher_forcing)
                        for split in SPLITS}
        """
        return {split: self.batch(splits[split], split) for split in SPLITS}

    def batch(self, dataset, split: str, shuffle_buffer: int = 10_000, map_batch=None, map_example=None):
        """Shuffle (train only), apply ``map_example`` to each example (e.g. teacher forcing),
        batch, apply ``map_batch`` to each batch (e.g. a cast of compact uint8 examples), then
        prefetch, always last.

        Training drops a short last batch (reshuffled each epoch, so no example is left out
        for good): with several replicas it could leave one replica an empty batch, which
        TensorFlow 2.21's oneDNN convolution mishandles on CPU. Where shapes must be static
        (``context.drop_remainder``), every split does.
        """
        import tensorflow as tf

        drop_remainder = self.drop_remainder
        if split == "train":
            dataset = dataset.shuffle(shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
            examples = int(dataset.cardinality())
            drop_remainder = drop_remainder or not 0 <= examples < self.config.batch_size  # never zero batches
        if map_example is not None:
            dataset = dataset.map(map_example, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(self.config.batch_size, drop_remainder=drop_remainder)
        if map_batch is not None:
            dataset = dataset.map(map_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    # -- model -------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self):
        """Return a compiled ``keras.Model`` (called inside the strategy scope)."""

    def scheduled_learning_rate(self, train_examples: int | None):
        """The optimizer's learning rate: ``config.learning_rate``, or, where the task's config
        has ``lr_schedule="cosine"``, a ``keras.optimizers.schedules.CosineDecay`` from it down to
        5% over all the run's training steps. The schedule reads the optimizer's step count, so
        a resumed run continues where it stopped. ``train_examples`` is the training split's
        size; None (no data built: export, predict) gives the constant rate.

        Example (in ``build_model``)::

            rate = self.scheduled_learning_rate(self.info.get("train_examples"))
            model.compile(optimizer=keras.optimizers.Adam(rate), ...)
        """
        import keras

        config = self.config
        if getattr(config, "lr_schedule", "constant") == "constant" or not train_examples:
            return config.learning_rate
        steps = config.steps_per_epoch or max(1, train_examples // config.batch_size)
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * steps,
                                                      alpha=0.05)

    def build_training_state(self, model, batch) -> None:
        """Create every variable before the first distributed step (metrics, loss,
        optimizer), from one non-distributed batch. Override for models without
        ``call`` (GANs): build their optimizers here."""
        from kerasapps.training.engine import build_model_state

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
    def evaluate(self, model, dataset, metrics: dict | None = None) -> dict:
        """Metrics on a held-out split: ``metrics`` are the model's compiled metrics, which
        the core measured on ``dataset`` (under the run's strategy); return them with the
        task's own added (BLEU of decoded text, a per-class table, a baseline ...).

        ``metrics`` is left out only by the deprecated ``evaluate(self, trainer, dataset)``
        of the previous release calling ``super().evaluate(trainer, dataset)``: then the
        compiled metrics are measured here.

        Example::

            def evaluate(self, model, dataset, metrics):
                return {**metrics, "exact_match": exact_match(model, dataset)}
        """
        if metrics is not None:
            return metrics
        if isinstance(model, _LegacyTrainer):
            return model.evaluate(dataset)
        raise TypeError(f"{type(self).__name__}.evaluate: Task.evaluate(model, dataset, metrics) needs the metrics "
                        "the core passed to your evaluate")

    def describe_predictions(self, model, dataset, count: int = 5) -> list[str]:
        """Human-readable lines for a few examples of ``dataset`` (printed by ``run``)."""
        return []

    def save_samples(self, model, dataset, directory, count: int = 8) -> list:
        """Write pictures of a few predictions (e.g. image | truth | prediction PNG panels)
        under ``directory`` (``<workdir>/samples`` on ``run``); return the paths written."""
        return []

    # -- adversarial examples ------------------------------------------------
    def attack_surface(self, model):
        """What ``kerasapps attack`` perturbs and scores: a
        :class:`kerasapps.api.AttackSurface` (the image input, its pixel range, the loss to
        climb, the metric to report). Raise ``UsageError`` saying why when the model cannot be
        attacked.

        Default: a compiled model with one float image input ``[N, H, W, C]`` of 0..255 pixels,
        attacked through its compiled loss and scored by the task's ``monitor`` (without
        ``val_``); any other model is refused, naming why.

        Example (a model with an image and a text input)::

            def attack_surface(self, model):
                return AttackSurface(input_name="image", score="accuracy")
        """
        from kerasapps.adversarial.surface import default_attack_surface

        return default_attack_surface(self, model)

    # -- width compression ---------------------------------------------------
    def compression_plan(self, model):
        """What ``kerasapps compress`` may prune in ``model`` (the task's trained model): a
        :class:`kerasapps.api.CompressionPlan` naming its prunable layer groups (each a producer
        Conv2D/Dense, the per-channel layers after it, the consumer layer re-fitted to the kept
        channels; a residual stream, which several producers write through identity shortcuts,
        as one :class:`kerasapps.api.PrunableStream`) and the config fields that rebuild the
        model at the kept widths.

        Default: refused, in one line (:class:`kerasapps.compression.plan.NotCompressible`).
        Leave out layers whose width something else fixes.

        Example (LeNet-like: conv1 -> pool1 -> conv2 -> pool2 -> flatten -> fc1)::

            def compression_plan(self, model):
                return CompressionPlan(
                    groups=(PrunableGroup("conv1", consumer="conv2"),
                            PrunableGroup("conv2", consumer="fc1", features="pool2")),
                    config_overrides=lambda widths: {"filters": (widths["conv1"], widths["conv2"])})
        """
        from kerasapps.compression.plan import no_compression_plan

        return no_compression_plan(self, model)

    # -- serving -----------------------------------------------------------
    @abc.abstractmethod
    def serving_function(self, model):
        """Return a ``tf.function`` with a named input signature taking raw inputs
        (``*_bytes`` for encoded binaries, ``text`` for strings) and returning a
        dict of readable outputs. It becomes the SavedModel's ``serving_default``."""

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

    def tensor_core(self, model):
        """What ``kerasapps export TASK --format litert|onnx`` converts: a
        :class:`kerasapps.serving.formats.TensorCore`, a Keras model with one numeric input and
        one numeric output (pixels in, scores out) and the pre- and post-processing a user of the
        converted file must do around it (the serving function's string inputs and in-graph
        loops do not convert). Raise ``UsageError`` saying why when the task's model has no such
        core; the export is then refused with that reason.

        Default: the compiled model itself when it takes one float image ``[N, H, W, C]`` of
        0..255 pixels and returns one tensor, with ``self.info["class_names"]`` as its classes
        when the task keeps them there; any other model is refused, naming why.

        Example (the same network built with ops the converters know, the trained weights copied)::

            def tensor_core(self, model):
                core = super().tensor_core(model)
                convertible = build_network(fused_pooling=False)
                convertible.set_weights(model.get_weights())
                return dataclasses.replace(core, model=convertible)
        """
        from kerasapps.serving.formats import default_tensor_core

        return default_tensor_core(self, model)

    # -- description (no TensorFlow needed) --------------------------------
    @classmethod
    def describe(cls) -> dict:
        from kerasapps.config import describe_fields

        return {
            "name": cls.name,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "config": describe_fields(cls.Config),
            "dataset_kinds": list(cls.dataset_kinds),
            "datasets": dataset_choices(cls),
            "folder_layout": cls.folder_layout,
            "monitor": cls.monitor,
            "serving_inputs": dict(cls.serving_inputs),
            "serving_outputs": dict(cls.serving_outputs),
        }


def _check_splits(splits, where: str) -> None:
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise TypeError(f"{where} returned no {', '.join(missing)} split")


def new_task(task_class, config=None, source=None, info: dict | None = None, context: RunContext | None = None):
    """The task the core runs: ``task_class(config, source, info=info, context=context)``.

    A class whose ``__init__`` still has the previous release's signature
    ``(config, source, info, seed)`` (deprecated) is built with ``seed=context.seed`` and
    given ``context`` afterwards.
    """
    if _accepts_context(task_class):
        return task_class(config, source, info=info, context=context)
    if context is None:
        return task_class(config, source, info=info)
    task = task_class(config, source, info=info, seed=context.seed)
    task.context = context
    return task


def evaluate_task(task, model, dataset, compiled_metrics, trainer=None):
    """Call the task's ``evaluate`` hook; ``compiled_metrics(dataset)`` measures the model's
    compiled metrics. A plugin written for the previous release's ``evaluate(self, trainer,
    dataset)`` (deprecated: its class warned when it was defined) still works: it gets a
    ``_LegacyTrainer`` over ``trainer``, the engine that trained the model."""
    if _binds(type(task), "evaluate", 3):
        return task.evaluate(model, dataset, compiled_metrics(dataset))
    return task.evaluate(_LegacyTrainer(model, compiled_metrics, trainer), dataset)


class _LegacyTrainer:
    """What the previous release's ``evaluate(self, trainer, dataset)`` received:
    ``trainer.model``, ``trainer.evaluate(dataset)`` (the compiled metrics, measured on each
    call) and the engine's other attributes (``strategy`` ...)."""

    def __init__(self, model, evaluate, trainer=None):
        self.model = model
        self.evaluate = evaluate
        self._trainer = trainer

    def __getattr__(self, name):
        trainer = self.__dict__.get("_trainer")
        if trainer is None:
            raise AttributeError(f"the trainer given to evaluate(self, trainer, dataset) has no {name!r}")
        return getattr(trainer, name)


# How the core calls the methods a task may override: name -> positional arguments after self.
_CORE_CALLS = {
    "load_registered": 0, "load_tfds": 0, "load_folder": 0, "build_datasets": 0, "prepare_datasets": 1,
    "build_model": 0, "build_training_state": 2, "training_callbacks": 3, "evaluate": 3,
    "describe_predictions": 3, "save_samples": 3, "serving_function": 1, "serving_resources": 0,
    "export_assets": 0, "attack_surface": 1, "tensor_core": 1, "compression_plan": 1,
}


def _overridden(cls) -> set:
    """Names the plugin's classes define (anything below Task in the MRO)."""
    names = set()
    for klass in cls.__mro__[:cls.__mro__.index(Task)] if Task in cls.__mro__ else ():
        names.update(klass.__dict__)
    return names


def _binds(cls, name: str, count: int, **keywords) -> bool:
    """Whether ``getattr(instance, name)(*count arguments, **keywords)`` binds to its signature."""
    attribute = inspect.getattr_static(cls, name, None)
    function = getattr(cls, name, None)
    if not callable(function):
        return False
    arguments = [None] * count
    if not isinstance(attribute, (staticmethod, classmethod)) and inspect.isfunction(function):
        arguments.insert(0, None)  # self
    try:
        inspect.signature(function).bind(*arguments, **keywords)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): take it on trust
        return True
    return True


def _signature(cls, name: str) -> str:
    try:
        return str(inspect.signature(getattr(cls, name)))
    except (TypeError, ValueError):
        return "(...)"


def _accepts_context(cls) -> bool:
    return _binds(cls, "__init__", 2, info=None, context=None)


def _deprecated_forms(cls) -> list[str]:
    """Deprecation messages for the previous release's forms that ``cls`` itself defines."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    messages = []
    if "evaluate" in cls.__dict__ and not _binds(cls, "evaluate", 3) and _binds(cls, "evaluate", 2):
        messages.append(f"{where}.evaluate{_signature(cls, 'evaluate')} is deprecated: implement "
                        "evaluate(self, model, dataset, metrics), where metrics is what trainer.evaluate(dataset) "
                        "returned and model is trainer.model (see kerasapps.api.Task.evaluate)")
    if "__init__" in cls.__dict__ and not _accepts_context(cls) and _binds(cls, "__init__", 2, info=None, seed=0):
        messages.append(f"{where}.__init__{_signature(cls, '__init__')} is deprecated: take "
                        "__init__(self, config=None, source=None, info=None, seed=None, context=None) (or **kwargs) "
                        "and pass them on to super().__init__")
    return messages


__all__ = ["DATASET_KINDS", "SPLITS", "RunContext", "Task", "TaskConfig"]
