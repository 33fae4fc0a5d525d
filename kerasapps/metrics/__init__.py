"""Metrics shared by tasks, each with the paper it follows: corpus BLEU and exact match
(``bleu``), CIDEr-D (``cider``), image quality L1 / PSNR / SSIM (``quality``), and retrieval
recall, R-precision and the Frechet distance of embeddings (``retrieval``).

A new shared metric goes here, and into :mod:`kerasapps.api` if plugins should use it.
"""
