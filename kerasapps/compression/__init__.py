"""Width compression of a trained network: fewer channels per layer, the next layer re-fitted.

``spectral`` holds the arithmetic (NumPy only): the feature covariance, the channel selections
(spectral, L1-norm, random) and the closed-form re-fit; ``plan`` the task hook's answer
(:class:`CompressionPlan`: which layers form prunable groups); ``surgery`` the Keras side
(measuring the features, moving the weights into the narrow model, counting parameters and
multiply-adds); ``compress_run`` ``kerasapps compress``'s report and new run folder.
"""
