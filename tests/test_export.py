"""Export: what the serving function uses besides the model travels in the SavedModel."""

import subprocess
import sys

import keras
import tensorflow as tf

from kerasapps.serving.export import export_saved_model
from kerasapps.task import Task
from kerasapps.data.text import Vocabulary


class _VocabularyTask(Task):
    name = "vocabulary-probe"

    def __init__(self, vocabulary):
        super().__init__()
        self.vocabulary = vocabulary

    def build_model(self):
        return keras.Sequential([keras.Input((5,), dtype="int64"), keras.layers.Embedding(8, 2),
                                 keras.layers.Flatten(), keras.layers.Dense(1)])

    def serving_resources(self):
        return [self.vocabulary.vectorizer]

    def serving_function(self, model):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            ids = self.vocabulary.encode(text)
            return {"ids": ids, "score": model(ids)}

        return serve


def test_text_vectorization_table_is_exported_and_serves_in_a_fresh_process(tmp_path):
    vocabulary = Vocabulary(["a", "red", "circle"], max_length=5)
    task = _VocabularyTask(vocabulary)
    path = export_saved_model(task, task.build_model(), tmp_path)
    assert path == tmp_path / "vocabulary-probe" / "1"
    code = (
        "import tensorflow as tf, sys\n"
        f"serve = tf.saved_model.load({str(path)!r}).signatures['serving_default']\n"
        "print(serve(text=tf.constant(['A red circle, blue!']))['ids'].numpy().tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # a=2, red=3, circle=4 (after padding and [UNK]); "blue" is unknown (1); padded with 0.
    assert result.stdout.strip().splitlines()[-1] == "[[2, 3, 4, 1, 0]]"
