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


def test_a_slow_probe_waits_ten_times_its_cost_before_the_next():
    clock = FakeClock()
    t = LiveRotation(_emb(), "hq", {"steps": 60}, map_every=10, map_min_seconds=1.0, clock=clock)
    score = t._probe.score

    def slow_score(q, **kw):  # each score takes 0.5 s of the clock: the next may come 5 s later at the earliest
        clock.now += 0.5
        return score(q, **kw)

    object.__setattr__(t._probe, "score", slow_score)
    t.start()
    assert t.map_gap_seconds == 5.0
    while t.running:
        t.advance(max_steps=1)
        clock.now += 0.3  # a multiple of 10 every 3 s (3.5 s after a scored one): only every other one is scored
    # (with map_min_seconds alone, 1 s, every multiple would be); the last step is always scored
    assert _map_steps(t) == [0, 10, 30, 50, 60]


def test_probe_codes_are_the_quantizers_codes():
    from hashviz.quantize import make_quantizer
    from hashviz.retrieval.metrics import mean_average_precision
    from hashviz.session.live import Probe, probe_indices

    emb = _emb()
    probe = Probe.of(emb, probe_indices(emb, 7))
    q, db = emb.part("query"), emb.part("database")
    for quantizer in (make_quantizer("hq", emb.dim, steps=5).fit(emb.part("train").z),
                      make_quantizer("itq", emb.dim, center=True).fit(emb.part("train").z)):
        assert np.any(quantizer.state()["mean"]) == (quantizer.name == "itq")  # the centred path is exercised
        qc, dc = probe.codes(quantizer)
        assert np.array_equal(qc, quantizer.encode(q.z[probe_indices(emb, 7)]))
        assert np.array_equal(dc, quantizer.encode(db.z))
        want = mean_average_precision(quantizer.encode(q.z[probe_indices(emb, 7)]), quantizer.encode(db.z),
                                      q.labels[probe_indices(emb, 7)], db.labels)
        assert probe.score(quantizer) == want


def test_the_step_budget_fills_what_drawing_leaves_of_the_target_period():
    from hashviz.session.live import next_step_budget

    # ticks of 0.08 s fitting every 0.2 s: 0.12 s goes to drawing, so the next fits 0.3 - 0.12 = 0.18 s
    budget, overhead = next_step_budget(0.2, 0.08, None, target=0.3, lo=0.08, hi=0.25)
    assert (round(budget, 9), round(overhead, 9)) == (0.18, 0.12)
    # the overhead is smoothed: a second tick whose drawing took 0.2 s moves the estimate half way, to 0.16
    budget, overhead = next_step_budget(0.38, 0.18, overhead, target=0.3, lo=0.08, hi=0.25)
    assert (round(budget, 9), round(overhead, 9)) == (0.14, 0.16)
    # bounded both ways: slow drawing never starves the fit below lo, quick drawing never lets a tick exceed hi
    assert next_step_budget(1.0, 0.08, 0.9, target=0.3, lo=0.08, hi=0.25)[0] == 0.08
    assert next_step_budget(0.26, 0.25, 0.01, target=0.3, lo=0.08, hi=0.25)[0] == 0.25
    # a long pause (no tick for a while: the page was hidden) starts again from lo
    assert next_step_budget(5.0, 0.25, 0.05, target=0.3, lo=0.08, hi=0.25)[0] == 0.08
