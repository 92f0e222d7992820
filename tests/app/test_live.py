"""LiveRotation (UI-free): mAP on the probe at multiples of map_every but bounded per second; checkpoints paced."""

from __future__ import annotations

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


class FakeClock:
    """Seconds that pass only when the test says so (pacing is tested without depending on the machine's speed)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_checkpoints_back_off_when_they_are_slow():
    clock = FakeClock()
    saved = []

    def checkpoint(t):
        saved.append(t.n_steps)
        clock.now += 0.02  # a slow disk: each checkpoint takes 0.02 s, so the next waits 20× that = 0.4 s

    t = LiveRotation(_emb(), "hq", {"steps": 100_000}, checkpoint=checkpoint, checkpoint_seconds=0.0,
                     clock=clock).start()
    for _ in range(50):  # 50 steps, 0.01 s apart: 0.5 s of fitting
        t.advance(max_steps=1)
        clock.now += 0.01
    t.stop()
    # the first checkpoint, then one at least 0.4 s later (not one per step, as checkpoint_seconds=0 asks),
    # and the final one at stop
    assert len(saved) == 3, saved
    assert saved[0] == 1 and saved[-1] == t.n_steps == 50


def test_probe_map_is_paced_by_the_clock():
    clock = FakeClock()
    t = LiveRotation(_emb(), "hq", {"steps": 40}, map_every=10, map_min_seconds=1.0, clock=clock).start()
    while t.running:
        t.advance(max_steps=1)
        clock.now += 0.3  # a step every 0.3 s: the multiples of 10 come every 3 s, each gets its score
    assert _map_steps(t) == [0, 10, 20, 30, 40]
