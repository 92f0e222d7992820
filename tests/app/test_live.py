"""LiveRotation (UI-free): mAP on the probe at multiples of map_every but bounded per second; checkpoints paced."""

from __future__ import annotations

import time

import numpy as np

from hashviz.embeddings import Embeddings
from hashviz.session.live import LiveRotation
from tests.helpers import clustered_embeddings


def _emb() -> Embeddings:
    z, labels = clustered_embeddings(n_per_class=40, n_classes=4, n_bits=8)
    split = np.where(np.arange(len(z)) % 4 == 0, 1, 2).astype(np.uint8)
    split[(split == 2) & (np.arange(len(z)) % 2 == 1)] = 0  # every 4th row a query, the rest train / database
    return Embeddings(z=z, labels=labels, split=split)


def _map_steps(t: LiveRotation) -> list[int]:
    return [r["step"] for r in t.curve if r.get("map") is not None]


def test_map_every_steps_when_unbounded_and_at_most_once_per_interval_otherwise():
    free = LiveRotation(_emb(), "hq", {"steps": 40}, map_min_seconds=0.0).start()
    while free.running:
        free.advance(max_seconds=1.0)
    assert _map_steps(free) == [0, 10, 20, 30, 40]
    slow = LiveRotation(_emb(), "hq", {"steps": 40}, map_min_seconds=1e9).start()
    while slow.running:
        slow.advance(max_seconds=1.0)
    assert _map_steps(slow) == [0, 10, 40]  # the first multiple of 10, then only the final score
    assert all(0 <= r["map"] <= 1 for r in slow.curve if r.get("map") is not None)


def test_checkpoints_back_off_when_they_are_slow():
    saved = []

    def checkpoint(t):
        saved.append(t.n_steps)
        time.sleep(0.02)  # a slow disk: 20× this is 0.4 s between checkpoints

    t = LiveRotation(_emb(), "hq", {"steps": 100_000}, checkpoint=checkpoint, checkpoint_seconds=0.0).start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        t.advance(max_steps=1)
    t.stop()
    assert 2 <= len(saved) <= 4, saved  # the first one, about one more in 0.5 s, and the final one at stop
    assert saved[-1] == t.n_steps
