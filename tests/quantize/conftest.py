"""Small known-answer problems for the quantizer tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import clustered_embeddings


def planted_corners(n=400, n_bits=16, noise=0.05, seed=0):
    """Points at +-1 hypercube corners plus small noise, turned by a known random rotation Q.

    Returns (X noisy rotated float32, Xc noise-free rotated float32, C corners, Q)."""
    rng = np.random.default_rng(seed)
    C = np.sign(rng.standard_normal((n, n_bits)))
    Q, r = np.linalg.qr(rng.standard_normal((n_bits, n_bits)))
    Q *= np.sign(np.diag(r))
    X = (C + noise * rng.standard_normal((n, n_bits))) @ Q
    return X.astype(np.float32), (C @ Q).astype(np.float32), C, Q


@pytest.fixture(scope="session")
def planted():
    return planted_corners()


@pytest.fixture(scope="session")
def labelled():
    """300 x 16 clustered embeddings (5 classes), not sign-aligned."""
    return clustered_embeddings(n_per_class=60, n_classes=5, n_bits=16, noise=0.35, seed=3)
