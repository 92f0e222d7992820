"""Command line: ``python -m hashviz <command>``.

Each command is a function ``cmd_<name>(args) -> int`` registered by an ``add_<name>(subparsers)`` function in
COMMANDS. HashvizError is printed with its hint and exits 2; nothing prints a traceback for user mistakes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from hashviz.errors import HashvizError

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn):
    COMMANDS.append(fn)
    return fn


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


@command
def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="fit quantizers on an embeddings file and score retrieval",
                       description="Fit a quantizer on the train split of EMBEDDINGS.npz, encode query and "
                                   "database, print mAP@all, mAP@k, P@k, P@r<=radius, quantization error, fit time.")
    p.add_argument("embeddings", help="an .npz with z (n, d) and labels; optional split (0 train/1 query/2 database)")
    p.add_argument("--quantizer", "-q", nargs="+", default=["hq"], choices=["sign", "itq", "hq", "random"])
    p.add_argument("--loss", default=None, choices=["l2", "l1", "bit_var", "min_entry"], help="HQ loss")
    p.add_argument("--schedule", default=None, choices=["fast", "paper"], help="HQ training schedule")
    p.add_argument("--top-k", type=int, default=1000)
    p.add_argument("--radius", type=int, default=2)
    p.add_argument("--ties", default="expected", choices=["expected", "stable", "optimistic", "pessimistic"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from hashviz.embeddings import Embeddings
    from hashviz.evaluate import evaluate

    emb = Embeddings.load(args.embeddings, seed=args.seed)
    results = []
    for name in args.quantizer:
        options: dict = {"random_state": args.seed}
        if name == "hq":
            if args.loss:
                options["loss"] = args.loss
            if args.schedule:
                options["schedule"] = args.schedule
        bar = _progress(None, f"fit {name}") if not args.json else None

        def tick(step, bar=bar):
            if bar is not None:
                bar.update(1)

        res = evaluate(emb, name, options=options, top_k=args.top_k, ties=args.ties, radius=args.radius,
                       on_step=tick)
        if bar is not None:
            bar.close()
        results.append(res)
    if args.json:
        out = {"embeddings": str(args.embeddings), "n_bits": emb.dim, "n_query": results[0].n_query,
               "n_database": results[0].n_database, "n_train": results[0].n_train,
               "results": [r.to_dict() for r in results]}
        if len(results) == 1:
            out.update(results[0].to_dict())
        print(json.dumps(out, indent=2))
    else:
        r0 = results[0]
        print(f"{args.embeddings}: {emb.n} rows, {emb.dim} bits; {r0.n_query} queries vs {r0.n_database} "
              f"database, quantizers fit on {r0.n_train} train rows; ties={args.ties}")
        head = (f"{'quantizer':<10} {'mAP@all':>8} {f'mAP@{r0.top_k}':>9} {f'P@{r0.top_k}':>8} "
                f"{f'P@r<={r0.radius}':>8} {'q.error':>8} {'fit s':>7}")
        print(head)
        for r in results:
            print(f"{r.quantizer:<10} {r.map:8.4f} {r.map_at_k:9.4f} {r.p_at_k:8.4f} {r.p_within_radius:8.4f} "
                  f"{r.quantization_error:8.4f} {r.fit_seconds:7.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hashviz", description="Deep hashing explorer (headless).")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HashvizError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
