"""Plugin discovery: which tasks and datasets exist, and who provides them.

Nothing here imports TensorFlow. Plugins are loaded from the ``kerasapps``
entry-point group (the first-party tasks and the core's own ``shapes``
dataset included), unless switched off:

- ``-p no:NAME`` on the command line switches off the plugin whose entry point,
  distribution or task is called ``NAME``;
- ``KERASAPPS_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry point at all except
  those named with ``-p NAME``.

Example::

    from kerasapps.registry import discover
    registry = discover()
    task_class = registry.load_task("classification")   # checked against the Task contract

A plugin that fails to import, implements a hook that does not exist (a misspelt
name) or whose task class lacks a method the :class:`kerasapps.api.Task` contract
requires is reported as broken, with its distribution and version; the others
keep working.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import traceback
import warnings

import pluggy

from kerasapps import hookspecs
from kerasapps.errors import PluginFailed, TrainingFailed, UsageError, tf_error_cause

ENTRY_POINT_GROUP = "kerasapps"
AUTOLOAD_ENV = "KERASAPPS_DISABLE_PLUGIN_AUTOLOAD"


def _import_object(path: str):
    module_name, _, attr = path.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _top_package(path: str) -> str:
    """``"pkg.module:object"`` -> ``"pkg"``."""
    return path.partition(":")[0].partition(".")[0]


def _describe_fault(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _missing_module(factory: str) -> str | None:
    """The module of ``"package.module:object"`` when it cannot be found (without importing it)."""
    module_name = factory.partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (Exception, SystemExit):  # a parent package that is missing or fails at import
        found = None
    return None if found is not None else module_name


@dataclasses.dataclass(frozen=True)
class _LazySpec:
    name: str
    factory: str
    summary: str = ""

    def load(self):
        """Import and return the factory object (TensorFlow may load here, not before)."""
        try:
            return _import_object(self.factory)
        except (Exception, SystemExit) as exc:  # the plugin's fault, not a crash of kerasapps
            raise UsageError(f"{self.name!r} cannot be loaded from {self.factory}: {_describe_fault(exc)}") from None


@dataclasses.dataclass(frozen=True)
class _ClassSpec(_LazySpec):
    """A task given as a class (not through an entry point): loading it is returning it."""

    task_class: type = None

    def load(self):
        return self.task_class


class TaskSpec(_LazySpec):
    """A light description of a task; the model code loads only on demand.

    Args:
        name: the task's command-line name (``kerasapps run NAME``).
        factory: ``"package.module:TaskClass"``, imported when the task runs.
        summary: one line for ``kerasapps list``.

    Example::

        TaskSpec("classification", "kerasapps_classification.task:ClassificationTask",
                 "image classification (LeNet-5, ResNet-20)")
    """


class DatasetSpec(_LazySpec):
    """A named dataset that tasks can read with ``--dataset NAME``.

    ``factory`` is ``"package.module:object"``; what the object is (a module of
    generator functions, a builder class) is agreed between the dataset and the
    tasks that read it.
    """


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from, as ``kerasapps list`` shows it."""

    name: str  # entry-point name
    value: str  # module path
    distribution: str
    version: str
    error: str | None = None  # why it failed to load, if it did

    def describe(self) -> str:
        where = f"{self.distribution} {self.version}".strip()
        return f"plugin {self.name!r} {where if where.startswith('(') else f'({where})'}"


@dataclasses.dataclass
class Registry:
    """Everything the loaded plugins registered.

    ``disabled`` holds the plugins switched off (``-p no:NAME``) or not loaded because
    autoloading is off: entry-point name -> why. ``broken_tasks`` collects the task
    classes :meth:`load_task` refused (task name -> reason).
    """

    plugins: list[PluginInfo]
    tasks: dict[str, tuple[TaskSpec, PluginInfo]]
    datasets: dict[str, tuple[DatasetSpec, PluginInfo]]
    plugin_manager: pluggy.PluginManager
    disabled: dict[str, tuple[PluginInfo, str]] = dataclasses.field(default_factory=dict)
    broken_tasks: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def task(self, name: str) -> TaskSpec:
        """Return the spec of task ``name`` or raise a UsageError listing the known ones
        (and saying so when the task belongs to a plugin that is switched off)."""
        if name in self.tasks:
            return self.tasks[name][0]
        for info, why in self.disabled.values():
            if name in _task_names_of(info):
                raise UsageError(f"task {name!r} is provided by {info.describe()}, which is {why}")
        known = ", ".join(sorted(self.tasks)) or "none (is any task plugin installed?)"
        hint = ""
        for info in self.broken:
            hint += f"\n{info.describe()} failed to load: {info.error}"
        raise UsageError(f"unknown task {name!r}; known tasks: {known}{hint}")

    def load_task(self, name: str):
        """Import task ``name``'s class and check it against the Task contract.

        A class that is no :class:`kerasapps.api.Task` or lacks one of its abstract methods
        is refused with a UsageError naming the plugin and the missing methods (and
        remembered in ``broken_tasks``), before any data is read.
        """
        spec = self.task(name)
        info = self.tasks[name][1]
        try:
            task_class = spec.load()
        except Exception as exc:  # the module imported by the factory path is the plugin's own
            problem = f"{spec.factory} failed to import: {type(exc).__name__}: {exc}"
        else:
            problem = task_contract_problem(task_class)
        if problem:
            self.broken_tasks[name] = problem
            raise UsageError(f"task {name!r} from {info.describe()} is broken: {problem}")
        return task_class

    def add_task_class(self, task_class) -> None:
        """Make a Task class that no plugin registers runnable by its ``name`` (notebook
        prototyping: ``kerasapps.run(MyTask)``); refused like a plugin's broken task."""
        name = getattr(task_class, "name", None)
        if not isinstance(task_class, type) or not name:
            raise UsageError(f"{task_class!r} is not a task class with a name (subclass kerasapps.api.Task "
                             "and set its name)")
        problem = task_contract_problem(task_class)
        if problem:
            raise UsageError(f"task class {task_class.__name__} is broken: {problem}")
        module = getattr(task_class, "__module__", "__main__")
        info = PluginInfo(name=module, value=module, distribution="(not installed)", version="")
        self.tasks[name] = (_ClassSpec(name, f"{module}:{task_class.__qualname__}", task_class=task_class), info)

    def check_tasks(self) -> dict[str, str]:
        """Load every task class (TensorFlow included) and return ``broken_tasks``."""
        for name in sorted(self.tasks):
            try:
                self.load_task(name)
            except UsageError:
                pass
        return dict(self.broken_tasks)

    def dataset(self, name: str) -> DatasetSpec | None:
        entry = self.datasets.get(name)
        return entry[0] if entry else None

    @contextlib.contextmanager
    def plugin_code(self, task: str, method: str | None = None):
        """Run a call into plugin code. An exception escaping it becomes a
        :class:`kerasapps.errors.PluginFailed` (from it) naming the plugin, its distribution and
        the method: the outermost function of a plugin's modules in the traceback, else task
        ``task``'s ``method``. Without ``method``, an exception that never passed through a
        plugin's module is the core's and is left as it is; so are the errors the CLI already
        reports in one line (UsageError, TrainingFailed).

        Example::

            with registry.plugin_code("classification", "evaluate"):
                metrics = task.evaluate(model, dataset, measured)
        """
        try:
            yield
        except (UsageError, TrainingFailed, PluginFailed):
            raise
        except Exception as exc:
            culprit = self._plugin_frame(exc)
            if culprit is None and method is None:
                raise
            if culprit is None:
                spec, info = self.tasks[task]
                culprit = info, f"{spec.factory.partition(':')[2] or task}.{method}"
            info, where = culprit
            if exc.__traceback__ is not None and exc.__traceback__.tb_frame is inspect.currentframe():
                exc.__traceback__ = exc.__traceback__.tb_next  # this frame says nothing to the plugin's author
            cause = tf_error_cause(exc)
            what = type(exc).__name__ if cause == type(exc).__name__ else f"{type(exc).__name__}: {cause}"
            raise PluginFailed(f"{info.describe()} failed in {where}: {what}") from exc

    def _plugin_frame(self, exc: BaseException) -> tuple[PluginInfo, str] | None:
        """(plugin, function) of the outermost traceback frame in a plugin's own package."""
        packages = {}
        for spec, info in self.tasks.values():
            packages.setdefault(_top_package(spec.factory), info)
        for info in self.plugins:
            packages.setdefault(_top_package(info.value), info)
        packages.pop("kerasapps", None)  # the core's own plugin (builtin): its frames are the core's
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            info = packages.get(_top_package(frame.f_globals.get("__name__", "")))
            if info is not None:
                return info, getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
        return None


def task_contract_problem(task_class) -> str | None:
    """Why ``task_class`` cannot be a task (None if it can): not a Task subclass, or
    abstract methods left unimplemented."""
    import inspect

    from kerasapps.task import Task

    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        return f"{task_class!r} is not a subclass of kerasapps.api.Task"
    problem = task_class.contract_problem() if hasattr(task_class, "contract_problem") else None
    if problem:
        return problem
    if inspect.isabstract(task_class):
        missing = sorted(task_class.__abstractmethods__)
        return f"class {task_class.__name__} lacks {', '.join(missing)} (required by kerasapps.api.Task)"
    return None


def _task_names_of(info: PluginInfo) -> list[str]:
    """The task names a plugin that was not registered would provide (imports it; [] if it fails)."""
    try:
        plugin = _import_object(info.value)
        return [spec.name for spec in getattr(plugin, "kerasapps_register_tasks", lambda: [])() or ()]
    except Exception:
        return []


def _entry_points():
    seen = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        # The same distribution can be visible twice (e.g. editable + site-packages path).
        if ep.name in seen:
            continue
        seen.add(ep.name)
        yield ep


def _dist_of(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown", "?"
    return dist.metadata["Name"], dist.version


def parse_plugin_options(options) -> tuple[set[str], list[str]]:
    """Split ``-p`` values into (blocked names, explicitly requested names)."""
    blocked, requested = set(), []
    for value in options or ():
        if value.startswith("no:"):
            blocked.add(value[3:])
        else:
            requested.append(value)
    return blocked, requested


def _broken(info: PluginInfo, error: str) -> PluginInfo:
    """``info`` marked broken (shown by ``kerasapps list``), with a warning on stderr."""
    error = f"{info.error}; {error}" if info.error else error
    warnings.warn(f"kerasapps plugin {info.name!r} from {info.distribution} {info.version} is broken: {error}",
                  stacklevel=3)
    return dataclasses.replace(info, error=error)


def _unknown_hooks(pm: pluggy.PluginManager, plugin) -> list[str]:
    """Hooks ``plugin`` implements that no hookspec declares (a misspelt name), as pluggy's
    ``check_pending`` sees them (``optionalhook`` implementations are allowed)."""
    names = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec() or caller.name.startswith("_"):
            continue
        if any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()):
            names.append(caller.name)
    return sorted(names)


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("kerasapps_"))


def discover(plugin_options=(), autoload: bool | None = None) -> Registry:
    """Load plugins and collect what they register.

    Args:
        plugin_options: ``-p`` values: ``no:NAME`` switches off the plugin whose entry point,
            distribution or task is ``NAME`` (a warning says so when ``NAME`` matches
            nothing); ``NAME`` loads an entry point (or an importable module) even when
            autoloading is off.
        autoload: load every entry point of the group; default: on unless
            ``KERASAPPS_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value.
    """
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    blocked, requested = parse_plugin_options(plugin_options)
    pm = pluggy.PluginManager("kerasapps")
    pm.add_hookspecs(hookspecs)
    plugins: list[PluginInfo] = []
    disabled: dict[str, tuple[PluginInfo, str]] = {}
    by_name = {ep.name: ep for ep in _entry_points()}

    def info_of(name) -> PluginInfo:
        ep = by_name.get(name)
        if ep is not None:
            return PluginInfo(name, ep.value, *_dist_of(ep))
        return PluginInfo(name, name, "(-p option)", "")  # ``-p some.module``: not an entry point

    def broken(info: PluginInfo, error: str) -> None:
        plugins.append(_broken(info, error))

    def load(info: PluginInfo) -> None:
        try:
            plugin = _import_object(info.value)
            pm.register(plugin, name=info.name)  # checks each hook's arguments against its spec
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            broken(info, _describe_fault(exc))
            return
        unknown = _unknown_hooks(pm, plugin)
        if unknown:
            pm.unregister(plugin)
            broken(info, f"unknown hook {', '.join(unknown)} (misspelt? the hooks are {', '.join(_hook_names())})")
            return
        plugins.append(info)

    names = list(by_name) if autoload else []
    names += [n for n in requested if n not in names]
    # Names of installed plugins match even when the plugin was not going to load anyway.
    matched: set[str] = blocked & {n for ep in by_name for n in (ep, _dist_of(by_name[ep])[0])}
    for name in names:
        info = info_of(name)
        switched_off = {name, info.distribution} & blocked
        if switched_off:
            matched |= switched_off
            disabled[name] = (info, f"switched off with -p no:{sorted(switched_off)[0]}")
            continue
        load(info)
    if not autoload:
        for name in by_name:
            if name not in names:
                disabled[name] = (info_of(name), f"not loaded: {AUTOLOAD_ENV} is set (add -p {name})")
    pm.check_pending()  # every unknown hook was reported and its plugin unregistered above

    info_by_plugin = {p.name: p for p in plugins if not p.error}

    def mark_broken(name, error):
        index = next(i for i, p in enumerate(plugins) if p.name == name)
        plugins[index] = _broken(plugins[index], error)
    # ``-p no:TASK``: switch off the plugin that registers task TASK.
    by_task = blocked - matched
    if by_task:
        for impl in pm.hook.kerasapps_register_tasks.get_hookimpls():
            try:
                provided = {spec.name for spec in impl.function() or ()}
            except (Exception, SystemExit):  # reported as broken below, where the tasks are registered
                continue
            hit = provided & by_task
            if hit:
                matched |= hit
                info = info_by_plugin.pop(impl.plugin_name)
                plugins.remove(info)
                pm.unregister(name=impl.plugin_name)
                disabled[info.name] = (info, f"switched off with -p no:{sorted(hit)[0]}")
    for name in sorted(blocked - matched):
        warnings.warn(f"-p no:{name} matches no kerasapps plugin, distribution or task "
                      f"(plugins: {', '.join(sorted(by_name)) or 'none'})", stacklevel=2)

    tasks: dict[str, tuple[TaskSpec, PluginInfo]] = {}
    datasets: dict[str, tuple[DatasetSpec, PluginInfo]] = {}
    for kind, hook, table in (
        ("task", pm.hook.kerasapps_register_tasks, tasks),
        ("dataset", pm.hook.kerasapps_register_datasets, datasets),
    ):
        for impl in hook.get_hookimpls():
            info = info_by_plugin[impl.plugin_name]
            try:
                specs = list(impl.function() or ())
            except (Exception, SystemExit) as exc:  # a faulty hook: that plugin is broken, the others work
                specs = []
                mark_broken(info.name, f"its {hook.name} hook failed: {_describe_fault(exc)}")
            for spec in specs:
                if spec.name in table:
                    other = table[spec.name][1]
                    raise UsageError(
                        f"{kind} {spec.name!r} is registered twice: by {other.describe()} "
                        f"and by {info.describe()}; uninstall one, or switch one off "
                        f"with `kerasapps -p no:{info.name} ...`"
                    )
                table[spec.name] = (spec, info)
    for name, (spec, info) in list(tasks.items()):
        missing = _missing_module(spec.factory)
        if missing:  # `kerasapps list` names it; `run` says the task is unknown and why
            del tasks[name]
            mark_broken(info.name, f"task {name!r} names module {missing!r}, which cannot be found")
    return Registry(plugins=plugins, tasks=tasks, datasets=datasets, plugin_manager=pm, disabled=disabled)
