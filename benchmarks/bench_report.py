"""Speed of scoring one cell in one counting pass (``score_codes``) against calling each metric on its own.

Baseline (same run, same data): what ``evaluate`` and the app's Compare table did before there was one record —
``mean_average_precision`` (mAP@all), ``mean_average_precision(top_k=k)``, ``precision_at_k``,
``precision_within_radius`` and the two tie bounds, each validating the codes and counting Hamming distances again.
hashviz: ``score_codes`` under the ``hashviz`` protocol (expected ties: one histogram pass) and under ``deephash``
(stable ties: one ordered pass that also fills the histogram). Both must give the same numbers (checked).

    python benchmarks/bench_report.py          # CIFAR-10 sized: 1,000 queries x 59,000 database, 64 bits
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hashviz.codes import pack_bits
from hashviz.retrieval.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
)
from hashviz.retrieval.report import score_codes


def codes(nq, ndb, n_classes, n_bits=64, flip=0.2, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.random((n_classes, n_bits)) < 0.5
    ql, dl = rng.integers(0, n_classes, nq), rng.integers(0, n_classes, ndb)
    qb = centers[ql] ^ (rng.random((nq, n_bits)) < flip)
    db = centers[dl] ^ (rng.random((ndb, n_bits)) < flip)
    return pack_bits(qb), pack_bits(db), ql, dl


def separate(qc, dc, ql, dl, ties, k, depth):
    return {"map": mean_average_precision(qc, dc, ql, dl, top_k=depth, ties=ties),
            "map_at_k": mean_average_precision(qc, dc, ql, dl, top_k=k, ties=ties),
            "p_at_k": precision_at_k(qc, dc, ql, dl, k, ties=ties),
            "p_within_radius": precision_within_radius(qc, dc, ql, dl, radius=2),
            "map_optimistic": mean_average_precision(qc, dc, ql, dl, top_k=depth, ties="optimistic"),
            "map_pessimistic": mean_average_precision(qc, dc, ql, dl, top_k=depth, ties="pessimistic")}


def best(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--ndb", type=int, default=59000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    qc, dc, ql, dl = codes(args.nq, args.ndb, 10)
    k = 1000
    score_codes(qc[:5], dc[:50], ql[:5], dl[:50], protocol="deephash", top_k=10)   # compile / load kernels
    separate(qc[:5], dc[:50], ql[:5], dl[:50], "stable", 10, 49)
    print(f"{args.nq:,} queries x {args.ndb:,} database, 64 bits, load average {os.getloadavg()[0]:.2f}")
    for protocol, ties, depth in (("hashviz", "expected", None), ("deephash", "stable", args.ndb - 1)):
        base, t_base = best(lambda t=ties, d=depth: separate(qc, dc, ql, dl, t, k, d), args.repeat)
        ev, t_one = best(lambda p=protocol: score_codes(qc, dc, ql, dl, protocol=p, top_k=k), args.repeat)
        for key, v in base.items():
            if abs(getattr(ev, key) - v) > 1e-12:
                raise SystemExit(f"{protocol}: {key} differs: {getattr(ev, key)} vs {v}")
        print(f"{protocol:<9} ({ties:<8}) six separate calls {t_base:7.3f} s   one pass {t_one:7.3f} s   "
              f"{t_base / t_one:5.1f}x   mAP {ev.map:.6f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
