"""Plain, tutorial-style Keras scripts: the baselines kerasapps is measured against.

Each one is written as a keras-io reader would write it (the layers spelled out,
``model.fit`` on a straightforward ``tf.data`` pipeline, no tuning) with the same
architecture, batch size, precision and data as the kerasapps task's defaults, and
defines ``BATCH_SIZE`` and ``build(train_examples) -> (compiled model, dataset)`` for
the suite. Run one alone with ``python -m benchmarks.reference.<task>``.
"""
