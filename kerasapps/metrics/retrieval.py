"""Scores for embeddings of paired data (images and their captions, say): retrieval recall,
R-precision as text-to-image papers report it, and the Frechet distance between two feature sets.

NumPy only: the arrays come from any model's ``predict``.

Example::

    recall_at_k(image_vectors @ caption_vectors.T, caption_owner[None] == np.arange(n)[:, None])
    # {1: 0.42, 5: 0.71, 10: 0.83}
    r_precision(generated_image_vectors, caption_vectors)   # 0.31: true caption first among 100
    frechet_distance(real_features, generated_features)      # 12.7
"""

from __future__ import annotations

import numpy as np


def _unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def recall_at_k(scores, relevant, ks=(1, 5, 10)) -> dict:
    """The share of queries (rows) with a relevant item among their ``k`` best-scored items.

    Returns ``{"R@1": ..., "R@5": ...}``: one share in [0, 1] per ``k``.

    ``scores`` is ``[queries, items]`` (higher is better), ``relevant`` a boolean array of the
    same shape. A query's rank is the number of irrelevant items that score at least as high as
    its best relevant one: ties count against it, so constant scores earn nothing.

    Example::

        recall_at_k([[0.9, 0.1], [0.8, 0.7]], [[True, False], [False, True]], ks=(1, 2))  # {1: 0.5, 2: 1.0}
    """
    scores, relevant = np.asarray(scores, np.float64), np.asarray(relevant, bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be the same [queries, items]")
    best_relevant = np.where(relevant, scores, -np.inf).max(axis=1, keepdims=True)
    rank = ((scores >= best_relevant) & ~relevant).sum(axis=1)
    found = relevant.any(axis=1)
    return {k: float((found & (rank < k)).mean()) for k in ks}


def r_precision(image_embeddings, caption_embeddings, distractors: int = 99, seed: int = 0) -> float:
    """R-precision as AttnGAN (Xu et al. 2018) reports it for text-to-image models: for each
    image, rank its own caption among itself and ``distractors`` captions of other images drawn
    at random, by cosine similarity; return the share of images whose own caption is first.

    Returns the mean R-precision over the images, a float in [0, 1].

    Row ``i`` of ``caption_embeddings`` is image ``i``'s caption (the one it was generated from,
    or one of a real photo's references). A distractor that scores the same as the true caption
    beats it (constant embeddings give 0, not 1). Chance is ``1 / (distractors + 1)``. The draws
    depend only on ``seed`` and the number of images, so two generators are scored against the
    same distractors.

    Example::

        r_precision(np.eye(200), np.eye(200))                            # 1.0: each caption matches its image
        r_precision(images, captions[np.random.permutation(200)], 99)    # about 0.01: chance
    """
    images, captions = _unit_rows(image_embeddings), _unit_rows(caption_embeddings)
    n = len(images)
    if images.ndim != 2 or captions.shape != images.shape:
        raise ValueError(f"image embeddings {images.shape} and caption embeddings {captions.shape} must be the "
                         "same [images, dims], one caption per image")
    if not 0 < distractors < n:
        raise ValueError(f"{distractors} distractors need at least {distractors + 1} images, got {n}")
    rng = np.random.default_rng(seed)
    # Distinct other images: draw among n - 1 indices, then step over the image itself.
    others = np.stack([rng.choice(n - 1, distractors, replace=False) for _ in range(n)])
    others += others >= np.arange(n)[:, None]
    true_score = np.einsum("nd,nd->n", images, captions)
    distractor_scores = np.einsum("nd,nkd->nk", images, captions[others])
    return float((true_score > distractor_scores.max(axis=1)).mean())


def frechet_distance(features_a, features_b) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets (rows are samples):
    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)``, the formula of FID.

    Returns a float >= 0 (0 for identical feature distributions).

    Only as comparable as the features: FID is this distance in Inception-v3's pool features;
    in any other network's features it is a different figure, to be named as such. The matrix
    square roots come from symmetric eigendecompositions (negative eigenvalues from rounding
    are taken as 0), so no SciPy is needed.

    Example::

        a = np.random.default_rng(0).normal(size=(5000, 2))
        frechet_distance(a, a)          # 0.0
        frechet_distance(a, a + 3.0)    # about 18: |(3, 3)|^2, the covariances equal
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets {a.shape} and {b.shape} must be [samples, same dims]")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a covariance needs at least 2 samples in each set")
    mean_gap = a.mean(0) - b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(mean_gap @ mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


__all__ = ["frechet_distance", "r_precision", "recall_at_k"]
