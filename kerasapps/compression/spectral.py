"""Channel selection and the closed-form re-fit of the next layer (NumPy only).

Spectral pruning (Suzuki et al., "Spectral Pruning: Compressing Deep Neural Networks via
Spectral Analysis and its Generalization Error", arXiv 1808.08558): with ``Sigma`` the
(uncentred) covariance of a layer's output features ``phi`` (channels last; every spatial
position of every sampled image is one sample), keep the channels ``J`` (``|J| = k``) that
minimise the reconstruction error

    L(J) = tr[M (Sigma_FF - Sigma_FJ (Sigma_JJ + lambda I)^-1 Sigma_JF)]

and replace the dropped channels by their least-squares reconstruction from the kept ones,
``phi_F ~= A phi_J`` with ``A = Sigma_FJ (Sigma_JJ + lambda I)^-1``, folded into the next
linear layer: ``W' = A^T W`` on its input-channel axis. ``M = I`` is the paper's input-aware
criterion (what ``kerasapps compress`` uses); ``weighting`` takes the output-aware one
(``M = W W^T``, the next layer's weights) or any mix of the two.

The paper chooses ``J`` by the criterion with a combinatorial search; here it is chosen by
greedy forward selection: one channel at a time, the one that lowers ``L`` the most (each step
exact, through the Schur complement of the kept block).

Example::

    sigma = covariance_of(features)                  # features: [samples, channels]
    kept = spectral_selection(sigma, k=16, ridge=1e-4)
    A = reconstruction_map(sigma, kept, ridge=1e-4)   # [channels, 16]
    next_kernel = refit_consumer_kernel(next_kernel, A)
"""

from __future__ import annotations

import numpy as np

METHODS = ("spectral", "l1", "random")


class FeatureCovariance:
    """The uncentred covariance ``E[phi phi^T]`` of features streamed in batches (float64).

    Uncentred on purpose: the re-fit folds ``A`` into the next layer without touching its bias, so
    the reconstruction must be linear (no intercept), which also keeps zero padding at zero.

    Example::

        stats = FeatureCovariance(channels=32)
        for batch in feature_batches:            # [..., 32]
            stats.update(batch)
        sigma = stats.covariance                 # [32, 32]
    """

    def __init__(self, channels: int):
        self.sum = np.zeros((channels, channels), np.float64)
        self.samples = 0

    def update(self, features) -> None:
        rows = np.asarray(features, np.float64).reshape(-1, self.sum.shape[0])
        self.sum += rows.T @ rows
        self.samples += rows.shape[0]

    @property
    def covariance(self) -> np.ndarray:
        if not self.samples:
            raise ValueError("no feature samples were measured")
        return self.sum / self.samples


def covariance_of(features) -> np.ndarray:
    """The uncentred covariance of ``features`` (``[..., channels]``, every leading index a sample).

    Example::

        covariance_of(np.eye(3))   # eye(3) / 3
    """
    features = np.asarray(features)
    stats = FeatureCovariance(features.shape[-1])
    stats.update(features)
    return stats.covariance


def ridge_of(covariance, ridge: float) -> float:
    """``lambda`` of the re-fit: ``ridge`` times the mean channel variance (scale-free).

    Example::

        ridge_of(np.diag([1.0, 3.0]), 1e-3)   # 0.002
    """
    return float(ridge) * float(np.mean(np.diag(covariance)))


def spectral_selection(covariance, k: int, ridge: float = 1e-4, weighting=None) -> np.ndarray:
    """Greedy forward selection of ``k`` channels minimising ``L(J)`` (module docstring).

    Adding channel ``j`` to ``J`` lowers ``L`` by ``d^T M d / s`` with ``d = Sigma_Fj -
    Sigma_FJ P Sigma_Jj``, ``s = Sigma_jj + lambda - Sigma_jJ P Sigma_Jj`` and ``P = (Sigma_JJ +
    lambda I)^-1``: every candidate is scored in one matrix product per step.

    Args:
        covariance: ``Sigma``, ``[C, C]``.
        k: channels to keep, ``1 <= k <= C``.
        ridge: ``lambda`` relative to the mean channel variance (:func:`ridge_of`).
        weighting: ``M`` (``[C, C]``, positive semi-definite); None: the identity.

    Returns the kept channel indices, sorted.

    Example::

        spectral_selection(covariance_of(features), k=8)
    """
    return joint_spectral_selection([covariance], k, ridge, None if weighting is None else [weighting])


def joint_spectral_selection(covariances, k: int, ridge: float = 1e-4, weightings=None) -> np.ndarray:
    """One set of ``k`` channels for several layers that must keep the same channels (SegNet: an
    encoder and the decoder layer whose output is unpooled with that encoder's pooling indices),
    chosen greedily to minimise the sum of their criteria, each divided by its ``tr(M Sigma)`` so
    that every layer counts alike (one covariance: exactly :func:`spectral_selection`).

    Example::

        joint_spectral_selection([encoder_sigma, decoder_sigma], k=32)

    Returns the kept channel indices, sorted.
    """
    sigmas = [np.asarray(c, np.float64) for c in covariances]
    channels = sigmas[0].shape[0]
    if any(sigma.shape != (channels, channels) for sigma in sigmas):
        raise ValueError(f"the covariances are not all {channels} x {channels}")
    if not 1 <= k <= channels:
        raise ValueError(f"k must be within 1..{channels}, got {k}")
    if k == channels:
        return np.arange(channels, dtype=np.int64)
    weights = [np.eye(channels) if w is None else np.asarray(w, np.float64)
               for w in (weightings or [None] * len(sigmas))]
    kept: list[int] = []
    for _ in range(k):
        gain = np.zeros(channels)
        for sigma, weight in zip(sigmas, weights):
            gain += _greedy_gains(sigma, weight, kept, ridge_of(sigma, ridge)) / max(
                float(np.trace(weight @ sigma)), np.finfo(np.float64).tiny)
        gain[kept] = -np.inf
        kept.append(int(np.argmax(gain)))
    return np.array(sorted(kept), dtype=np.int64)


def _solve_symmetric(block, rhs, lam: float) -> np.ndarray:
    """``block^-1 rhs`` for the ridge-regularised ``block = Sigma_JJ + lam I``. At ``lam`` 0 the
    block is singular wherever kept channels are linear combinations of each other in this layer
    (a tied group's can be): then the least-squares solution of least norm, the ridge solution's
    limit as ``lam`` goes to 0."""
    if lam > 0:
        return np.linalg.solve(block, rhs)
    return np.linalg.lstsq(block, rhs, rcond=None)[0]


def _greedy_gains(sigma, weight, kept, lam) -> np.ndarray:
    """How much adding each channel to ``kept`` lowers the criterion (see spectral_selection)."""
    if kept:
        explained = sigma[:, kept] @ _solve_symmetric(sigma[np.ix_(kept, kept)] + lam * np.eye(len(kept)),
                                                      sigma[kept, :], lam)  # Sigma_FJ P Sigma_J:
    else:
        explained = np.zeros_like(sigma)
    residual = sigma - explained                                 # column j: d_j
    schur = np.diag(sigma) + lam - np.diag(explained)            # s_j
    gain = np.einsum("ij,ik,kj->j", residual, weight, residual)
    usable = schur > 1e-12 * max(float(np.max(np.diag(sigma))), np.finfo(np.float64).tiny)
    return np.where(usable, gain / np.where(usable, schur, 1.0), 0.0)


def reconstruction_map(covariance, kept, ridge: float = 1e-4) -> np.ndarray:
    """``A = Sigma_FJ (Sigma_JJ + lambda I)^-1`` (``[C, k]``): the least-squares map from the kept
    channels to all of them (ridge ``lambda`` as in :func:`ridge_of`). Keeping every channel gives
    the identity.

    Example::

        A = reconstruction_map(sigma, kept)
        approx = features[:, kept] @ A.T     # ~ features
    """
    sigma = np.asarray(covariance, np.float64)
    kept = np.asarray(kept, np.int64)
    if len(kept) == sigma.shape[0]:
        return np.eye(sigma.shape[0])[:, kept]
    lam = ridge_of(sigma, ridge)
    block = sigma[np.ix_(kept, kept)] + lam * np.eye(len(kept))
    return _solve_symmetric(block, sigma[kept, :], lam).T  # block is symmetric: (block^-1 Sigma_JF)^T


def selection_map(channels: int, kept) -> np.ndarray:
    """The ``[C, k]`` map that only keeps the channels ``kept`` (a dropped channel is read as
    zero): the next layer of L1-norm and random pruning just loses those inputs.

    Example::

        selection_map(4, [0, 2])   # columns e_0, e_2
    """
    return np.eye(channels)[:, np.asarray(kept, np.int64)]


def reconstruction_error(covariance, kept, ridge: float = 1e-4, weighting=None) -> float:
    """``L(J)`` of the module docstring, for the channels ``kept``.

    Example::

        reconstruction_error(sigma, spectral_selection(sigma, 4))
    """
    sigma = np.asarray(covariance, np.float64)
    kept = np.asarray(kept, np.int64)
    weight = np.eye(sigma.shape[0]) if weighting is None else np.asarray(weighting, np.float64)
    lam = ridge_of(sigma, ridge)
    block = sigma[np.ix_(kept, kept)] + lam * np.eye(len(kept))
    residual = sigma - sigma[:, kept] @ _solve_symmetric(block, sigma[kept, :], lam)
    return float(np.trace(weight @ residual))


def l1_selection(kernel, k: int) -> np.ndarray:
    """Li et al. 2017 ("Pruning Filters for Efficient ConvNets"): the ``k`` filters (last axis of
    ``kernel``) with the largest L1 norm.

    Example::

        l1_selection(conv.kernel.numpy(), k=16)

    Returns the kept indices, sorted.
    """
    kernel = np.asarray(kernel)
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return np.sort(np.argsort(-norms, kind="stable")[:k]).astype(np.int64)


def random_selection(channels: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` of ``channels`` channels drawn uniformly without replacement (the sanity baseline).

    Example::

        random_selection(64, 32, seed=1)
    """
    return np.sort(np.random.default_rng(seed).choice(channels, size=k, replace=False)).astype(np.int64)


def refit_consumer_kernel(kernel, mapping) -> np.ndarray:
    """The next layer's kernel on the kept channels: ``W' = A^T W`` on its input-channel axis.

    ``kernel`` is a Conv2D kernel ``[kh, kw, C, out]`` (applied per spatial tap), a Dense kernel
    ``[C, out]``, or a Dense kernel after ``Flatten`` of an ``[H, W, C]`` map, ``[H*W*C, out]``
    (applied per position); ``mapping`` is ``A``, ``[C, k]``.

    Example::

        refit_consumer_kernel(np.ones((3, 3, 4, 8)), selection_map(4, [1, 3])).shape   # (3, 3, 2, 8)
    """
    kernel = np.asarray(kernel)
    mapping = np.asarray(mapping, np.float64)
    channels, kept = mapping.shape
    if kernel.ndim == 4:
        if kernel.shape[2] != channels:
            raise ValueError(f"the kernel {kernel.shape} takes {kernel.shape[2]} channels, the map {channels}")
        return np.einsum("hwco,ck->hwko", kernel.astype(np.float64), mapping).astype(kernel.dtype)
    if kernel.ndim != 2 or kernel.shape[0] % channels:
        raise ValueError(f"a kernel {kernel.shape} is not a Conv2D or Dense kernel on {channels} channels")
    per_position = kernel.reshape(-1, channels, kernel.shape[1]).astype(np.float64)  # Flatten: (h, w, c) order
    return np.einsum("pco,ck->pko", per_position, mapping).reshape(-1, kernel.shape[1]).astype(kernel.dtype)


def kept_width(channels: int, keep: float) -> int:
    """Channels kept of ``channels`` at the fraction ``keep`` (rounded, at least one).

    Example::

        kept_width(84, 0.5)   # 42
    """
    return max(1, min(channels, int(round(channels * keep))))


__all__ = ["FeatureCovariance", "METHODS", "covariance_of", "joint_spectral_selection", "kept_width", "l1_selection",
           "random_selection", "reconstruction_error", "reconstruction_map", "refit_consumer_kernel", "ridge_of",
           "selection_map", "spectral_selection"]
