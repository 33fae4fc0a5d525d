"""Running a task: from a command line's options to a finished, exported run.

- ``options``: the options of ``run``/``train``/``evaluate``/``export``, declared once;
- ``runner``: options -> config, strategy, data, model, engine, export (:class:`TaskRun`);
- ``engine``: the training loop and its callbacks, one path for every strategy;
- ``runtime`` and ``distribute``: strategy, precision, XLA, seed, which process is the chief;
- ``workdir`` and ``lock``: a run's folder, its resume check and its one-run-at-a-time lock;
- ``launch``: local multi-worker jobs; ``transfer``: a trained run's model, for another task.
"""
