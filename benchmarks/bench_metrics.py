"""Speed of hashviz's tie-aware mAP against the evaluation code deep-hashing papers publish.

Protocols (64 bits, clustered synthetic codes: one random code per class, each bit flipped with probability
``--flip``):

- CIFAR-10: mAP@all, 1,000 queries x 59,000 database, 10 classes;
- ImageNet-100: mAP@1000, 5,000 queries x 128,500 database, 100 classes.

Baseline (same run, same data): what published evaluation code does, with its sort made stable — per query a
±1 inner product against the database, Hamming = (n_bits - dot) / 2, ``argsort(kind="stable")``, relevance from
one-hot labels, cumsum, AP — run with one BLAS thread (its fastest setting on this 2-core machine).
hashviz: ``mean_average_precision(..., ties="stable")`` (must equal the baseline) and ``ties="expected"`` (exact
expectation over tie orders), plus the optimistic/pessimistic bounds, timed warm (best of ``--repeat``).

    python benchmarks/bench_metrics.py                      # both protocols, full baseline (~1-2 min)
    python benchmarks/bench_metrics.py --baseline-queries 500   # baseline on 500 queries, time extrapolated
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from hashviz.retrieval import _kernels
from hashviz.retrieval.metrics import mean_average_precision

PROTOCOLS = {
    "cifar10": dict(nq=1000, ndb=59000, n_classes=10, top_k=None, label="CIFAR-10 mAP@all, 1,000 x 59,000"),
    "imagenet100": dict(nq=5000, ndb=128500, n_classes=100, top_k=1000,
                        label="ImageNet-100 mAP@1000, 5,000 x 128,500"),
}


def clustered_codes(nq, ndb, n_classes, n_bits=64, flip=0.2, seed=0):
    """±1 codes around one random code per class; labels int class ids."""
    rng = np.random.default_rng(seed)
    centers = rng.random((n_classes, n_bits)) < 0.5
    ql, dl = rng.integers(0, n_classes, nq), rng.integers(0, n_classes, ndb)
    qb = centers[ql] ^ (rng.random((nq, n_bits)) < flip)
    db = centers[dl] ^ (rng.random((ndb, n_bits)) < flip)
    return qb, db, ql, dl


def baseline_map(q_pm1, db_pm1, q_onehot, db_onehot, top_k=None):
    """Published-code style evaluation, sort made stable. Returns (mAP, per-query AP)."""
    n_bits = q_pm1.shape[1]
    aps = np.zeros(len(q_pm1))
    for i in range(len(q_pm1)):
        gnd = (q_onehot[i] @ db_onehot.T > 0).astype(np.float32)
        hamm = 0.5 * (n_bits - q_pm1[i] @ db_pm1.T)
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind]
        if top_k is not None:
            gnd = gnd[:top_k]
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.flatnonzero(gnd) + 1.0
        aps[i] = np.mean(count / tindex)
    return float(aps.mean()), aps


def best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(name, baseline_queries, repeat, flip):
    p = PROTOCOLS[name]
    qb, db, ql, dl = clustered_codes(p["nq"], p["ndb"], p["n_classes"], flip=flip)
    qc, dc = np.packbits(qb, axis=1), np.packbits(db, axis=1)
    k = p["top_k"]
    print(f"\n== {p['label']} (64 bits, {p['n_classes']} classes, flip {flip}) ==")

    # warm-up: load / compile the kernels
    mean_average_precision(qc[:4], dc[:100], ql[:4], dl[:100], top_k=k, ties="stable")
    mean_average_precision(qc[:4], dc[:100], ql[:4], dl[:100], top_k=k, ties="expected")

    times, maps = {}, {}
    for ties in ("stable", "expected", "optimistic", "pessimistic"):
        times[ties], maps[ties] = best_time(
            lambda t=ties: mean_average_precision(qc, dc, ql, dl, top_k=k, ties=t), repeat)

    nb = p["nq"] if baseline_queries is None else min(baseline_queries, p["nq"])
    q_pm1, db_pm1 = np.where(qb[:nb], 1.0, -1.0).astype(np.float32), np.where(db, 1.0, -1.0).astype(np.float32)
    eye = np.eye(p["n_classes"], dtype=np.float32)
    with threadpool_limits(1):   # one BLAS thread: faster here than OpenBLAS threads fighting over 2 cores
        t0 = time.perf_counter()
        base_map, _ = baseline_map(q_pm1, db_pm1, eye[ql[:nb]], eye[dl], k)
        base_t = (time.perf_counter() - t0) * p["nq"] / nb
    ours_sub = mean_average_precision(qc[:nb], dc, ql[:nb], dl, top_k=k, ties="stable")
    note = "" if nb == p["nq"] else f"  (extrapolated from {nb} of {p['nq']} queries)"
    print(f"baseline (±1 matvec + stable argsort + cumsum): {base_t:8.3f} s{note}   mAP {base_map:.6f}")
    print(f"hashviz ties='stable' on the same queries:                          mAP {ours_sub:.6f}"
          f"   |diff| {abs(ours_sub - base_map):.1e}")
    if abs(ours_sub - base_map) > 1e-9:
        raise SystemExit("stable mAP differs from the baseline: a bug")
    for ties in ("stable", "expected", "optimistic", "pessimistic"):
        print(f"hashviz ties={ties!r:14}: {times[ties]:8.3f} s   x{base_t / times[ties]:7.1f} vs baseline"
              f"   mAP {maps[ties]:.6f}")
    return dict(protocol=name, baseline_s=base_t, baseline_queries=nb, **{f"{t}_s": v for t, v in times.items()},
                **{f"map_{t}": v for t, v in maps.items()})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=[*PROTOCOLS, "both"], default="both")
    ap.add_argument("--baseline-queries", type=int, default=None,
                    help="run the baseline on the first N queries only and extrapolate its time (printed)")
    ap.add_argument("--repeat", type=int, default=3, help="hashviz timings: best of this many warm runs")
    ap.add_argument("--flip", type=float, default=0.2, help="bit-flip probability around the class codes")
    args = ap.parse_args(argv)
    print(f"threads: {_kernels.n_threads()} (HASHVIZ_THREADS), CPUs: {os.cpu_count()}, "
          f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = list(PROTOCOLS) if args.protocol == "both" else [args.protocol]
    for name in names:
        run(name, args.baseline_queries, args.repeat, args.flip)


if __name__ == "__main__":
    main()
