"""The Rotation page's live fit in process (no browser, no server): where a tick's time goes, and the steps/s
of :class:`hashviz.session.live.LiveRotation` now against the path before issue 10 §4's speed work, both
measured in the same run.

    python benchmarks/bench_live.py --home DIR [--key KEY] [--bits 64] [--seconds 4]
    python benchmarks/bench_live.py --file benchmarks/files/cifar60k_s0.npz   # from scale_files.py

The fit is built as the app builds it (HQ, full batch, l2, the probe scored in a background thread) and
advanced in ticks as the Rotation page's fast fragment does: ``advance(max_seconds=STEP_BUDGET)``, over
``--seconds``. Reported for each path ("old": the probe encodes both splits with ``quantizer.encode`` and
scores at most every ``map_min_seconds`` whatever it costs, the slow fragment draws its sample rows at every
redraw; "new": the current code): steps/s inside ``advance``, probe scores made and the mean cost of one,
and the cost of the slow fragment's data (bit-balance sample, two histogram samples). Then the two fits'
curves are compared step by step: losses and quantization errors must be bit-identical (they are printed as
a check, and the script exits non-zero if not), and the probe mAPs of the steps both scored must agree.

Finally the ceiling the page's tick structure puts on the browser's steps/s: the old page fitted STEP_BUDGET
seconds of every TICK_SECONDS (or longer) tick, so the plotted curve could grow at most ``rate × STEP_BUDGET /
TICK_SECONDS`` steps per second; the page now fits up to STEP_BUDGET_MAX of a TICK_TARGET_SECONDS tick.
Every figure carries the load average when it was taken (2 shared cores: the load moves every number).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from hashviz.session import live
from hashviz.session.live import LiveRotation, Probe

STEP_BUDGET, TICK_SECONDS = 0.08, 0.2  # the page's old fixed slice: 0.08 s of fitting in a 0.2 s tick
STEP_BUDGET_MAX, TICK_TARGET_SECONDS = 0.25, 0.3  # hashviz.ui.training's now (not imported: it imports streamlit)


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


class OldProbe(Probe):
    """The probe as it was: both splits through ``quantizer.encode`` (validated and copied) at every score."""

    def codes(self, quantizer):
        return quantizer.encode(self.q_z), quantizer.encode(self.db_z)


class OldLive(LiveRotation):
    """The pacing as it was: a score at most every ``map_min_seconds``, whatever it costs; sample rows drawn at
    every redraw."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._probe = OldProbe(self._probe.q_z, self._probe.q_labels, self._probe.db_z, self._probe.db_labels)

    @property
    def map_gap_seconds(self) -> float:
        return self.map_min_seconds

    def _rows(self, n, seed, total, draw):
        return np.arange(total) if total <= n else draw(np.random.default_rng(seed))


def embeddings(args):
    if args.file is not None:
        from hashviz.embeddings import Embeddings

        return Embeddings.load(args.file)
    from hashviz.session.runs import Workspace

    ws = Workspace(args.home)
    runs = [r for r in ws.list_runs() if args.key in (None, r.key) and args.bits in r.bit_lengths]
    if not runs:
        raise SystemExit(f"no run with {args.bits} bits in {args.home}")
    return ws.load_embeddings(runs[0].key, args.bits)


def measure(cls, emb, seconds: float) -> dict:
    t = cls(emb, "hq", {"loss": "l2", "steps": 50_000}, background_probe=True)
    scores = []
    inner = t._probe.score

    def timed(q, **kw):
        t0 = time.perf_counter()
        v = inner(q, **kw)
        scores.append(time.perf_counter() - t0)
        return v

    object.__setattr__(t._probe, "score", timed)
    t.start()
    t.advance(max_steps=20)  # past torch's first-call costs
    ran, fit, t_end = 0, 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        ran += t.advance(max_seconds=STEP_BUDGET)
        fit += time.perf_counter() - t0
    slow0 = time.perf_counter()
    for _ in range(3):  # the slow fragment's data, as _status asks for it
        sample = t.balance_sample()
        t.fitted().transform(sample)
        t.rotated_sample(rotation=np.eye(emb.dim))
        t.rotated_sample()
    slow = (time.perf_counter() - slow0) / 3
    t.stop()
    return {"fit": t, "steps_per_s": ran / fit, "steps": ran, "scores": len(scores),
            "score_ms": 1e3 * float(np.mean(scores)) if scores else float("nan"), "slow_ms": 1e3 * slow,
            "load": load()}


def compare(old: LiveRotation, new: LiveRotation) -> bool:
    n = min(old.n_steps, new.n_steps)
    a = {r["step"]: r for r in old.curve if r["step"] <= n}
    b = {r["step"]: r for r in new.curve if r["step"] <= n}
    same = all(a[s]["loss"] == b[s]["loss"] and a[s]["quantization_error"] == b[s]["quantization_error"]
               for s in a)
    both = [s for s in a if a[s].get("map") is not None and b[s].get("map") is not None]
    maps = all(a[s]["map"] == b[s]["map"] for s in both)
    print(f"\ncurves over the {n} steps both fits ran: losses and quantization errors "
          f"{'bit-identical' if same else 'DIFFER'}; probe mAP at the {len(both)} steps both scored "
          f"{'identical' if maps else 'DIFFER'}")
    return same and maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--home", type=Path, help="a hashviz home with a prepared run (read only)")
    src.add_argument("--file", type=Path, help="an embeddings file (e.g. from benchmarks/scale_files.py)")
    ap.add_argument("--key", help="the run's key (default: the first run with --bits)")
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    emb = embeddings(args)
    print(f"{emb.n:,} x {emb.dim}: {int(emb.mask('train').sum()):,} train, "
          f"{int(emb.mask('database').sum()):,} database, {live.PROBE_QUERIES} probe queries ({load()})")
    res = {}
    for name, cls in (("old", OldLive), ("new", LiveRotation), ("old again", OldLive), ("new again", LiveRotation)):
        r = measure(cls, emb, args.seconds)
        res.setdefault(name.split()[0], []).append(r)
        print(f"{name:>10}: {r['steps_per_s']:6.0f} steps/s in advance() ({r['steps']} steps), {r['scores']} probe "
              f"scores of {r['score_ms']:.1f} ms, slow fragment data {r['slow_ms']:.1f} ms  ({r['load']})",
              flush=True)
    old = np.mean([r["steps_per_s"] for r in res["old"]])
    new = np.mean([r["steps_per_s"] for r in res["new"]])
    o_ms = np.mean([r["score_ms"] for r in res["old"]])
    n_ms = np.mean([r["score_ms"] for r in res["new"]])
    print(f"\nsteps/s new / old: {new / old:.2f}x  ({new:.0f} vs {old:.0f}); probe score {n_ms:.1f} vs {o_ms:.1f} ms "
          f"({o_ms / n_ms:.2f}x faster); slow fragment data {np.mean([r['slow_ms'] for r in res['new']]):.1f} vs "
          f"{np.mean([r['slow_ms'] for r in res['old']]):.1f} ms  ({load()})")
    print(f"tick ceiling at this rate: old page ({STEP_BUDGET} s of every {TICK_SECONDS} s) at most "
          f"{new * STEP_BUDGET / TICK_SECONDS:.0f} steps/s in the browser; now (up to {STEP_BUDGET_MAX} s of "
          f"{TICK_TARGET_SECONDS} s) at most {new * STEP_BUDGET_MAX / TICK_TARGET_SECONDS:.0f}")
    ok = compare(res["old"][0]["fit"], res["new"][0]["fit"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
