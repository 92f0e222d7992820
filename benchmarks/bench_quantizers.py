"""Quantizer benchmark: HQ with the authors' schedule vs our default schedule vs ITQ (and sign) on 50,000 x 64.

Data: 10 classes whose means are hypercube corners plus Gaussian noise, turned by a seeded random rotation, so
the clusters are not sign-aligned and a good rotation exists. All quantizers fit on all 50,000 rows (they never
see labels); mAP@all (ties="expected") is 1,000 random queries against the other 49,000.

Reported per method: fit wall time (time spent inside ``fit_steps`` only; the benchmark's own bookkeeping is
excluded), final loss and quantization error on the full data (float64, from ``rotation_``), mAP. For HQ we also
report the time at which the default schedule first reached the paper schedule's final loss (the loss moves
only a few per cent over a run, so "reached", never "within 1%") and the ratio to the paper run's time, and the
rate at which ``fit_steps`` streams steps on 5,000 x 64.

    python benchmarks/bench_quantizers.py                      # full paper run (300 epochs; minutes)
    python benchmarks/bench_quantizers.py --paper-epochs 30    # shorter paper run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from hashviz.quantize import HouseholderQuantizer, ITQQuantizer, SignQuantizer
from hashviz.quantize.base import sphere_rows
from hashviz.retrieval.metrics import mean_average_precision


def make_data(n=50_000, d=64, n_classes=10, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    means = np.sign(rng.standard_normal((n_classes, d)))
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    y = rng.integers(0, n_classes, n)
    z = means[y] + noise * rng.standard_normal((n, d))
    return (z @ q).astype(np.float32), y


def timed_steps(quantizer, X, on_step=None):
    """Consume fit_steps; returns (list of (seconds_inside_fit, FitStep)), counting only time inside the fit."""
    t0 = time.perf_counter()
    it = quantizer.fit_steps(X)
    inside = time.perf_counter() - t0
    out = []
    while True:
        t = time.perf_counter()
        try:
            s = next(it)
        except StopIteration:
            inside += time.perf_counter() - t
            break
        inside += time.perf_counter() - t
        out.append((inside, s))
        if on_step is not None:
            on_step(s)
    return out, inside


def full_loss(Xs64, R):
    """l2 loss = quantization error on sphere rows, float64."""
    Z = Xs64 @ np.asarray(R, dtype=np.float64)
    return float(np.mean(np.square(Z - np.where(Z >= 0, 1.0, -1.0))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--paper-epochs", type=int, default=300, help="epochs of the paper schedule (paper: 300)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rate-steps", type=int, default=200, help="steps timed for the 5,000 x 64 streaming rate")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = ap.parse_args(argv)

    import torch  # noqa: F401  (imported up front: the first fit would otherwise pay torch's import time)

    X, y = make_data(n=args.n)
    ITQQuantizer(X.shape[1], n_iter=2).fit(X[:1000])                      # warm-up (lazy imports, allocator)
    HouseholderQuantizer(X.shape[1], steps=2).fit(X[:1000])
    n, d = X.shape
    Xs64 = sphere_rows(X.astype(np.float64))
    rng = np.random.default_rng(1)
    perm = rng.permutation(n)
    qi, di = perm[:args.queries], perm[args.queries:]

    def m_ap(q):
        codes = q.encode(X)
        return float(mean_average_precision(codes[qi], codes[di], y[qi], y[di], ties="expected"))

    res = {"n": n, "n_bits": d, "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch_threads": 1}
    print(f"data: {n} x {d}, 10 classes, rotated hypercube-corner clusters; mAP: {args.queries} queries vs "
          f"{n - args.queries} database, ties=expected", flush=True)

    # sign
    sq = SignQuantizer(d)
    _, t_sign = timed_steps(sq, X)
    res["sign"] = {"seconds": t_sign, "loss": full_loss(Xs64, sq.rotation_), "map": m_ap(sq)}

    # ITQ
    iq = ITQQuantizer(d)
    steps, t_itq = timed_steps(iq, X)
    res["itq"] = {"seconds": t_itq, "loss": full_loss(Xs64, iq.rotation_), "map": m_ap(iq),
                  "iterations": len(steps)}
    print(f"ITQ: {t_itq:.2f} s for {len(steps)} iterations", flush=True)

    # HQ default schedule: keep every step's rotation (copied outside the timer) to find the crossing later.
    # It runs before and after the (long) paper run; the machine's load drifts, so times are the mean of the two.
    def run_fast():
        fast = HouseholderQuantizer(d)
        rotations = []
        steps, t = timed_steps(fast, X, on_step=lambda s: rotations.append(fast.rotation_.copy()))
        return fast, steps, rotations, t

    load = {"before": os.getloadavg()[0]}
    fast, steps_fast, rotations, t_fast_a = run_fast()
    print(f"HQ default: {t_fast_a:.2f} s for {len(steps_fast)} steps", flush=True)

    # HQ paper schedule
    paper = HouseholderQuantizer(d, schedule="paper", epochs=args.paper_epochs)
    load["paper_start"] = os.getloadavg()[0]
    steps_paper, t_paper = timed_steps(paper, X)
    load["paper_end"] = os.getloadavg()[0]
    print(f"HQ paper ({args.paper_epochs} epochs): {t_paper:.1f} s for {len(steps_paper)} steps", flush=True)
    _, steps_fast_b, _, t_fast_b = run_fast()
    load["after"] = os.getloadavg()[0]
    t_fast = (t_fast_a + t_fast_b) / 2
    res["load_avg_1min"] = load
    res["hq_fast"] = {"seconds": t_fast, "seconds_runs": [t_fast_a, t_fast_b], "steps": len(steps_fast),
                      "loss": full_loss(Xs64, fast.rotation_), "map": m_ap(fast), "schedule": fast.schedule_}
    res["hq_paper"] = {"seconds": t_paper, "steps": len(steps_paper), "epochs": args.paper_epochs,
                       "loss": full_loss(Xs64, paper.rotation_), "map": m_ap(paper), "schedule": paper.schedule_}

    # when did the default schedule first reach the paper's final loss? (float64 losses from rotation_)
    target = res["hq_paper"]["loss"]
    reach = None
    for i, ((t_a, s), R) in enumerate(zip(steps_fast, rotations)):
        if full_loss(Xs64, R) <= target:
            t_b = steps_fast_b[i][0]
            reach = {"step": s.step, "seconds": (t_a + t_b) / 2, "seconds_runs": [t_a, t_b]}
            break
    res["reach"] = reach
    if reach is not None:
        res["reach"]["ratio"] = t_paper / reach["seconds"]
        res["reach"]["ratio_range"] = [t_paper / max(reach["seconds_runs"]), t_paper / min(reach["seconds_runs"])]

    # streaming rate on 5,000 x 64
    X5 = X[:5000]
    rate = {}
    for name, q in (("default", HouseholderQuantizer(d, steps=args.rate_steps)),
                    ("paper", HouseholderQuantizer(d, schedule="paper", steps=args.rate_steps))):
        st, t = timed_steps(q, X5)
        rate[name] = len(st) / t
    res["rate_5000x64_steps_per_s"] = rate

    # report
    print()
    print(f"{'method':<24} {'fit s':>8} {'steps':>7} {'loss=QE':>10} {'mAP':>8}")
    rows = [("sign", res["sign"], 1), ("ITQ (50 it, float32)", res["itq"], res["itq"]["iterations"]),
            ("HQ default schedule", res["hq_fast"], res["hq_fast"]["steps"]),
            (f"HQ paper ({args.paper_epochs} ep)", res["hq_paper"], res["hq_paper"]["steps"])]
    for label, r, k in rows:
        print(f"{label:<24} {r['seconds']:8.2f} {k:7d} {r['loss']:10.6f} {r['map']:8.4f}")
    print()
    if reach is None:
        print(f"HQ default never reached the paper schedule's final loss {target:.6f} "
              f"(its own final: {res['hq_fast']['loss']:.6f})")
    else:
        lo, hi = reach["ratio_range"]
        print(f"HQ default reached the paper's final loss {target:.6f} at step {reach['step']} after "
              f"{reach['seconds']:.2f} s (runs: {reach['seconds_runs'][0]:.2f}, {reach['seconds_runs'][1]:.2f} s); "
              f"paper run {t_paper:.1f} s  ->  {reach['ratio']:.0f}x sooner ({lo:.0f}-{hi:.0f}x)")
    print(f"HQ default full run vs paper run: {t_paper / t_fast:.0f}x less time, final loss "
          f"{res['hq_fast']['loss']:.6f} vs {target:.6f}")
    print(f"ITQ fit: {t_itq:.2f} s (target < 1 s)")
    print("load average (1 min): " + ", ".join(f"{k} {v:.1f}" for k, v in load.items()))
    print(f"fit_steps rate on 5,000 x 64: default {rate['default']:.0f} steps/s, paper {rate['paper']:.0f} steps/s "
          f"(target >= 20)")
    if args.json:
        print(json.dumps(res, default=float))
    return res


if __name__ == "__main__":
    main()
