"""Projections: PCA against numpy's SVD, Procrustes recovery, the disk cache and its key, hamming UMAP on codes
(in this process; the background worker is tests/viz/test_layout_jobs.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hashviz.errors import InvalidInputError
from hashviz.viz import project as P


def test_pca_matches_svd_up_to_sign_and_is_deterministic():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    Y = P.pca_2d(X)
    Xc = X - X.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    ref = Xc @ vt[:2].T
    for k in range(2):
        assert np.allclose(np.abs(Y[:, k]), np.abs(ref[:, k]), atol=1e-4)
    assert np.array_equal(Y, P.pca_2d(X))
    # variance of the first component is the largest singular value squared / n
    assert np.isclose(Y[:, 0].var(), (np.linalg.svd(Xc, compute_uv=False)[0] ** 2) / len(X), rtol=1e-4)


def test_pca_of_one_column_and_bits():
    Y = P.pca_2d(np.arange(10, dtype=float)[:, None])
    assert Y.shape == (10, 2) and np.all(Y[:, 1] == 0)
    assert P.pca_2d(np.eye(4, dtype=bool)).shape == (4, 2)


def test_bad_input_raises_clear_errors():
    with pytest.raises(InvalidInputError, match="2-D"):
        P.pca_2d(np.zeros(5))
    with pytest.raises(InvalidInputError, match="NaN"):
        P.pca_2d(np.array([[0.0, np.nan], [1, 2]]))
    with pytest.raises(InvalidInputError, match="method"):
        P.project(np.zeros((4, 2)), method="tsne")


def test_procrustes_recovers_a_planted_similarity():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((50, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    reflect = np.diag([1, -1])
    moved = 3.0 * ref @ rot @ reflect + np.array([10.0, -4.0])
    aligned = P.procrustes_align(moved, ref)
    assert np.abs(aligned - ref).max() < 1e-4


def test_project_caches_on_disk_by_content(tmp_path):
    X = np.random.default_rng(2).standard_normal((30, 5)).astype(np.float32)
    Y = P.project(X, method="pca", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1
    # a planted value in the cache file is what comes back: proof the second call reads the cache
    planted = np.full_like(Y, 7.0)
    np.save(files[0], planted)
    assert np.array_equal(P.project(X, method="pca", cache_dir=tmp_path), planted)
    # another input or another parameter is another key
    P.project(X + 1, method="pca", cache_dir=tmp_path)
    P.project(X, method="pca", seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_layout_key_is_the_key_project_caches_under(tmp_path):
    X = np.random.default_rng(9).random((25, 6)) > 0.5
    P.project(X, method="pca", metric="hamming", cache_dir=tmp_path)
    key = P.layout_key(X.astype(np.uint8), method="pca", metric="hamming")  # hamming: any 0/1 dtype is the same bits
    assert [f.name for f in tmp_path.glob("*.npy")] == [f"{key}.npy"]
    assert key != P.layout_key(X, method="pca", metric="hamming", seed=1)
    with pytest.raises(InvalidInputError, match="2-D"):
        P.layout_input(np.zeros(3))


def test_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    X = np.random.default_rng(3).standard_normal((20, 4))
    Y = P.project(X, method="pca", cache_dir=tmp_path)
    path = next(tmp_path.glob("*.npy"))
    path.write_bytes(b"not a numpy file")
    assert np.allclose(P.project(X, method="pca", cache_dir=tmp_path), Y)
    assert np.allclose(np.load(path), Y)


def test_subsample_is_seeded_sorted_and_bounded():
    assert np.array_equal(P.subsample(10, 20), np.arange(10))
    s = P.subsample(50_000, 20_000, seed=1)
    assert len(s) == 20_000 and np.all(np.diff(s) > 0)
    assert np.array_equal(s, P.subsample(50_000, 20_000, seed=1))


def test_unique_init_averages_positions_of_equal_codes():
    bits = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 1]], dtype=bool)
    ref = np.array([[0, 0], [10, 10], [2, 2], [12, 12], [5, 0]], dtype=float)
    init = P._unique_init(bits, ref)
    uniq = np.unique(bits, axis=0)  # order: [0,1], [1,0], [1,1]
    expected = {(0, 1): (11, 11), (1, 0): (1, 1), (1, 1): (5, 0)}
    for row, pos in zip(uniq, init):
        assert np.allclose(pos, expected[tuple(int(b) for b in row)], atol=1e-2)


@pytest.mark.slow
def test_hamming_umap_of_codes_separates_planted_clusters(tmp_path):
    """Three clusters of 16-bit codes (a few flipped bits each): UMAP keeps same-cluster points together."""
    rng = np.random.default_rng(0)
    centers = rng.random((3, 16)) > 0.5
    labels = np.repeat(np.arange(3), 60)
    bits = centers[labels] ^ (rng.random((180, 16)) < 0.06)
    before = P.project(bits, method="umap", metric="hamming", cache_dir=tmp_path)
    assert before.shape == (180, 2) and np.isfinite(before).all()
    cents = np.stack([before[labels == c].mean(0) for c in range(3)])
    within = np.mean([np.linalg.norm(before[labels == c] - cents[c], axis=1).mean() for c in range(3)])
    between = np.min([np.linalg.norm(cents[a] - cents[b]) for a in range(3) for b in range(a + 1, 3)])
    assert between > 2 * within
    # identical codes land on identical points (unique=True)
    same = np.flatnonzero((bits == bits[0]).all(1))
    assert np.allclose(before[same], before[same[0]])
    # the "after" layout is aligned to the "before" one: same bits → nearly the same picture
    after = P.project(bits, method="umap", metric="hamming", cache_dir=tmp_path, reference=before)
    assert np.abs(after - before).mean() < 0.5 * np.abs(before - before.mean(0)).mean()


def test_importing_viz_does_not_import_umap_or_streamlit():
    code = ("import sys, hashviz.viz.project, hashviz.viz.layout_jobs, hashviz.viz.worker, hashviz.viz.figures,"
            " hashviz.viz.images;"
            "print(','.join(m for m in ('streamlit', 'umap') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_hamming_knn_is_exact_with_the_row_itself_first():
    rng = np.random.default_rng(5)
    bits = np.unique(rng.random((300, 20)) > 0.5, axis=0)
    idx, dist = P.hamming_knn(bits, 6)
    brute = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    assert np.array_equal(idx[:, 0], np.arange(len(bits))) and np.all(dist[:, 0] == 0)
    for r in range(len(bits)):
        want = np.sort(brute[r])[:6]  # the k smallest distances (ties may pick any of the equal rows)
        assert np.allclose(np.sort(dist[r]) * 20, want)
        assert np.allclose(dist[r] * 20, brute[r, idx[r]])  # each reported distance is that row's true distance
    assert dist.dtype == np.float32 and idx.dtype == np.int64


def test_default_epochs_budget():
    assert P.default_epochs(1_000) == P.MAX_EPOCHS == 200
    assert P.default_epochs(10_000) == 100
    assert P.default_epochs(200_000) == P.MIN_EPOCHS


@pytest.mark.slow
def test_umap_progress_reports_every_stage_and_every_epoch(tmp_path):
    rng = np.random.default_rng(6)
    bits = rng.random((400, 16)) > 0.5
    seen = []
    Y = P.project(bits, method="umap", metric="hamming", cache_dir=tmp_path, progress=lambda *a: seen.append(a))
    assert Y.shape == (400, 2)
    stages = [s for s, _, _ in seen]
    assert stages[0] == "neighbours" and "graph" in stages and stages[-1] == "epochs"
    epochs = [(d, t) for s, d, t in seen if s == "epochs"]
    n_unique = len(np.unique(bits, axis=0))
    assert [d for d, _ in epochs] == list(range(1, P.default_epochs(n_unique) + 1))  # one call per epoch, in order
    assert {t for _, t in epochs} == {P.default_epochs(n_unique)}
    import umap.layouts

    assert not isinstance(umap.layouts.tqdm, P._EpochReporter)  # umap's own progress bar is put back
