"""How fast the built-in `shapes` data is made and fed, against how fast LeNet-5 trains on it.

    python -m benchmarks.shapes_pipeline

Generation must never bound training: the pipeline's examples/s should exceed the
training examples/s (from `kerasapps run classification`'s metrics.json) by a wide margin.
"""

import time

from benchmarks.machine import describe_machine


def main(count: int = 4000, repeats: int = 3):
    from kerasapps.data import shapes

    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        shapes.generate_arrays("train", count, seed=1)
        rates.append(count / (time.perf_counter() - start))
    rates.sort()
    print(f"machine: {describe_machine()}")
    print(f"shapes generate_arrays, 64x64, one core: median {rates[len(rates) // 2]:.0f} images/s "
          f"(min {rates[0]:.0f}, max {rates[-1]:.0f}, {repeats} runs of {count})")

    from kerasapps.data.sources import DatasetSource
    from kerasapps_classification.task import ClassificationTask

    task = ClassificationTask(ClassificationTask.Config(train_examples=count, eval_examples=64),
                              DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes"))
    train = task.build_datasets()["train"]
    for epoch in range(3):  # epoch 0 fills the shuffle buffer; later ones show steady state
        start, seen = time.perf_counter(), 0
        for images, _ in train:
            seen += int(images.shape[0])
        print(f"classification tf.data pipeline, epoch {epoch}: {seen / (time.perf_counter() - start):.0f} examples/s")


if __name__ == "__main__":
    main()
