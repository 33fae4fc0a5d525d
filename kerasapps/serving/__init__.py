"""Serving a trained run: versioned SavedModel exports (``export``), running an export's
signature on files and strings (``predict``, for ``kerasapps predict``) and TensorFlow
Serving's REST API (``server``, for ``kerasapps serve``).
"""

from kerasapps._moved import forward_old_names

# This package replaced the module kerasapps/serving.py; its names keep working, with a warning.
__getattr__ = forward_old_names(__name__, "kerasapps.serving", dict.fromkeys(
    ["load_signature", "predict_inputs"], "kerasapps.serving.predict"))
