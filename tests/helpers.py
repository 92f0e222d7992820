"""Small synthetic data with a known structure, shared by tests."""

from __future__ import annotations

import numpy as np


def clustered_embeddings(n_per_class=60, n_classes=5, n_bits=16, noise=0.35, seed=0):
    """Class means on the sphere, turned by a random rotation so they are not sign-aligned."""
    rng = np.random.default_rng(seed)
    means = np.sign(rng.standard_normal((n_classes, n_bits)))
    q, _ = np.linalg.qr(rng.standard_normal((n_bits, n_bits)))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    z = means[labels] + noise * rng.standard_normal((len(labels), n_bits)) * np.sqrt(n_bits) / 4
    return (z @ q).astype(np.float32), labels
