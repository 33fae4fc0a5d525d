"""Each test of this plugin starts from Keras's float32 policy: an in-process run keeps the
precision it picked (mixed_bfloat16 on CPUs with bfloat16 instructions), as a script would."""

import pytest

from kerasapps.testing import reset_keras_precision


@pytest.fixture(autouse=True)
def _float32_after_each_test():
    yield
    reset_keras_precision()
