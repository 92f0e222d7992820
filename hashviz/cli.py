"""Command line: ``python -m hashviz <command>``.

Each command is a function ``cmd_<name>(args) -> int`` registered by an ``add_<name>(subparsers)`` function in
COMMANDS. HashvizError is printed with its hint and exits 2; nothing prints a traceback for user mistakes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable

from hashviz.defaults import BACKBONE as DEFAULT_BACKBONE
from hashviz.defaults import DATASET as DEFAULT_DATASET
from hashviz.defaults import HEAD as DEFAULT_HEAD
from hashviz.defaults import QUANTIZERS as DEFAULT_QUANTIZERS
from hashviz.errors import HashvizError, InvalidInputError
from hashviz.jsonable import to_jsonable
from hashviz.quantize import QUANTIZERS
from hashviz.validate import is_int

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn):
    COMMANDS.append(fn)
    return fn


def _int_at_least(low: int, example: str):
    """An argparse ``type``: an integer >= ``low`` (a wrong value is a usage error, before any work starts)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low} (e.g. {example}), got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


_seed = _int_at_least(0, "--seed 0")


def _folder(text: str) -> str:
    """An argparse ``type`` for --home: a folder, or a path where one can be created (not a file)."""
    from hashviz.paths import check_folder

    try:
        check_folder(text, "--home")
    except InvalidInputError as e:
        raise argparse.ArgumentTypeError(f"{e.message}; {e.hint}") from None
    return text


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def _head_name(text: str) -> str:
    """A head method by name or alias (SDSH → spherical); aliases resolve through the registry only when used."""
    from hashviz.heads.losses import METHOD_NAMES

    name = str(text).strip().lower()
    if name in METHOD_NAMES or name == "all":
        return name
    from hashviz.heads.losses import get_method

    try:
        return get_method(name).name
    except HashvizError:
        return name  # argparse's choices then list the valid names


def _head_choices(*, allow_all: bool = False) -> list[str]:
    from hashviz.heads.losses import METHOD_NAMES

    return list(METHOD_NAMES) + (["all"] if allow_all else [])


def _dataset_choices() -> list[str]:
    from hashviz.data import dataset_names

    return dataset_names()


def _add_protocol_args(p, *, allow_all: bool = False) -> None:
    """--protocol and --protocol-k: shared by evaluate, table and penalty."""
    from hashviz.retrieval.protocols import PROTOCOL_NAMES

    names = list(PROTOCOL_NAMES) + (["all"] if allow_all else [])
    p.add_argument("--protocol", default="hashviz", choices=names,
                   help="evaluation protocol (docs/metrics.md): hashviz = mAP@all, expected ties, queries without "
                        "a relevant item left out; deephash / h2q / orthohash = those papers' evaluators"
                        + ("; all = the same codes under every protocol" if allow_all else ""))
    p.add_argument("--protocol-k", default=None, metavar="K",
                   help="override the protocol's mAP depth: a number, 'all', or -1 (all but the last, "
                        "DeepHash-pytorch's topK=-1); default: the protocol's value for the dataset's family")


@command
def add_evaluate(sub) -> None:
    from hashviz.quantize import QUANTIZERS
    from hashviz.quantize.householder import LOSS_NAMES, SCHEDULES
    from hashviz.retrieval.metrics import TIES
    from hashviz.retrieval.protocols import FAMILIES

    p = sub.add_parser("evaluate", help="fit quantizers on an embeddings file and score retrieval",
                       description="Fit a quantizer on the train split of EMBEDDINGS.npz, encode query and "
                                   "database, print mAP (under --protocol), its tie bounds, mAP@k, P@k, "
                                   "P@r<=radius, quantization error, fit time. --protocol all prints the same "
                                   "codes under every protocol.")
    p.add_argument("embeddings", help="an .npz with z (n, d) and labels; optional split (0 train/1 query/2 database)")
    p.add_argument("--quantizer", "-q", nargs="+", default=["hq"], choices=list(QUANTIZERS))
    p.add_argument("--loss", default=None, choices=LOSS_NAMES, help="HQ loss")
    p.add_argument("--schedule", default=None, choices=SCHEDULES, help="HQ training schedule")
    p.add_argument("--top-k", type=_int_at_least(1, "--top-k 1000"), default=1000)
    p.add_argument("--radius", type=_int_at_least(0, "--radius 2"), default=2)
    p.add_argument("--ties", default=None, choices=TIES,
                   help="override the protocol's tie order (hashviz: expected; random: one seeded order)")
    _add_protocol_args(p, allow_all=True)
    p.add_argument("--family", default=None, choices=list(FAMILIES),
                   help="the published dataset whose settings the protocol applies (default: from the file's "
                        "dataset, else the protocol's default)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--hierarchy", default=None,
                   help='a JSON file {"class": "parent", ...}: adds the hierarchical score (mean semantic '
                        "similarity of the top k)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from hashviz.embeddings import Embeddings
    from hashviz.evaluate import evaluate, evaluate_protocols

    emb = Embeddings.load(args.embeddings, seed=args.seed)
    similarity = None
    if args.hierarchy:
        from hashviz.data.hierarchy import class_similarity_matrix, load_hierarchy_json

        names = tuple(emb.class_names)
        similarity = class_similarity_matrix(load_hierarchy_json(args.hierarchy, names), len(names), names)
    every = args.protocol == "all"
    if every and args.ties:
        raise InvalidInputError("--ties cannot be combined with --protocol all",
                                "each protocol has its own tie order; drop --ties")
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

        if every:
            res = evaluate_protocols(emb, name, options=options, top_k=args.top_k, radius=args.radius,
                                     protocol_k=args.protocol_k, family=args.family, on_step=tick)
        else:
            res = [evaluate(emb, name, options=options, top_k=args.top_k, ties=args.ties, radius=args.radius,
                            on_step=tick, similarity=similarity, protocol=args.protocol,
                            protocol_k=args.protocol_k, family=args.family)]
        if bar is not None:
            bar.close()
        results += res
    r0 = results[0]
    if args.json:
        out = {"embeddings": str(args.embeddings), "n_bits": emb.dim, "n_query": r0.n_query,
               "n_database": r0.n_database, "n_train": r0.n_train, "protocol": args.protocol,
               "results": [r.to_dict() for r in results]}
        if len(results) == 1:
            out.update(r0.to_dict())
        print(json.dumps(to_jsonable(out, strict=False), indent=2))
        return 0
    print(f"{args.embeddings}: {emb.n} rows, {emb.dim} bits; {r0.n_query} queries vs {r0.n_database} "
          f"database, quantizers fit on {r0.n_train} train rows; {r0.n_no_relevant} queries without a relevant item")
    if every:
        from hashviz.retrieval.protocols import get_protocol

        print("same codes, every protocol:")
        for r in results[:len(results) // len(args.quantizer)]:
            print(f"  {get_protocol(r.protocol).describe()}")
        protos = list(dict.fromkeys(r.protocol for r in results))
        width = max(len(r.map_label) for r in results) + 1
        print(f"{'quantizer':<10} " + " ".join(f"{r.map_label:>{width}}" for r in results[:len(protos)])
              + f" {'spread':>8}")
        for i in range(0, len(results), len(protos)):
            row = results[i:i + len(protos)]
            vals = [r.map for r in row]
            print(f"{row[0].quantizer:<10} " + " ".join(f"{v:>{width}.4f}" for v in vals)
                  + f" {max(vals) - min(vals):8.4f}")
        return 0
    lab = r0.map_label
    head = (f"{'quantizer':<10} {lab:>{len(lab)}} {'tie bounds':>17} {f'mAP@{r0.top_k}':>9} {f'P@{r0.top_k}':>8} "
            f"{f'P@r<={r0.radius}':>8} {'q.error':>8} {'fit s':>7}"
            + (f" {f'hier@{r0.top_k}':>9}" if similarity is not None else ""))
    print(head)
    for r in results:
        bounds = f"{r.map_pessimistic:.4f}…{r.map_optimistic:.4f}"
        print(f"{r.quantizer:<10} {r.map:>{len(lab)}.4f} {bounds:>17} {r.map_at_k:9.4f} {r.p_at_k:8.4f} "
              f"{r.p_within_radius:8.4f} {r.quantization_error:8.4f} {r.fit_seconds:7.2f}"
              + (f" {r.hierarchical_at_k:9.4f}" if similarity is not None else ""))
    return 0


class _StageBars:
    """One tqdm bar per pipeline stage on stderr, driven by ``progress(stage, done, total)``."""

    LABELS = {"dataset": "load dataset", "features": "backbone features", "heads": "train heads",
              "quantizers": "fit quantizers"}

    def __init__(self, enabled: bool = True) -> None:
        self.enabled, self.stage, self.bar = enabled, None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = _progress(total or None, self.LABELS.get(stage, stage))
        if self.bar is not None:
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None


def _add_source_args(p) -> None:
    """--dataset, --path, --root, --backbone: shared by every command that starts from a dataset."""
    p.add_argument("--dataset", default=DEFAULT_DATASET, choices=_dataset_choices(),
                   help=f"a dataset source (`hashviz datasets` says which are usable now; default {DEFAULT_DATASET})")
    p.add_argument("--path", default=None, help="file or folder for imagefolder / listfile / embeddings")
    p.add_argument("--root", default=None, help="dataset root (CIFAR: the folder holding cifar-10-batches-py)")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="a name from `hashviz backbones`")
    p.add_argument("--split-preset", default=None, choices=["deephash", "h2q"],
                   help="CIFAR-10 split of a paper: deephash = 500 train / 100 query per class, database all but "
                        "the queries (the default split); h2q = 500 train / 100 query / 100 validation per class, "
                        "database the rest without train and validation")


def _parse_head_options(items) -> dict[str, dict]:
    """``KEY=VALUE`` (every head) or ``METHOD:KEY=VALUE`` (one head) → {method or "": {key: value}}."""
    from hashviz.heads.losses import parse_option_value

    out: dict[str, dict] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"head option {item!r} is not KEY=VALUE",
                                    "e.g. --head-option lambda_q=0 or --head-option dpsh:lambda_q=0; "
                                    "`python -m hashviz heads` lists each method's options")
        method, _, key = key.strip().rpartition(":")
        out.setdefault(method.strip().lower(), {})[key.strip()] = parse_option_value(value)
    return out


def _check_head_options(method: str, options: dict, *, known_only: bool = False) -> None:
    """Each option is one of ``method``'s loss options (unless ``known_only``: then only those are checked) and has
    the type of its default (a number for a float option, true/false for a flag…), before any work starts."""
    import math

    from hashviz.heads.losses import get_method, method_options

    defaults = method_options(get_method(method).name)
    for key, value in options.items():
        if key not in defaults:
            if known_only:
                continue
            raise InvalidInputError(f"head method {method!r} has no option {key!r}",
                                    f"its options: {', '.join(defaults) or '(none)'}; `python -m hashviz heads` "
                                    "lists every method's options")
        default = defaults[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = is_int(value), "an integer"
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a word"
        elif isinstance(default, list | tuple):
            ok, kind = isinstance(value, list), "a JSON list such as [1, 2]"
        else:
            ok, kind = True, ""
        if not ok:
            shown = json.dumps(value) if not isinstance(value, str) else value
            raise InvalidInputError(f"head option {key}={shown[:40]} for {method!r}: {key} must be {kind}",
                                    f"its default is {json.dumps(default)}; e.g. --head-option {key}="
                                    f"{json.dumps(default)}")


def _dataset_options(args) -> dict:
    return {k: v for k, v in (("path", args.path), ("root", args.root),
                              ("split_preset", getattr(args, "split_preset", None))) if v is not None}


@command
def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="dataset → features → hashing heads → embeddings → quantizers, cached",
                       description="Load a dataset, extract backbone features, train one hashing head per bit "
                                   "length, save the embeddings (.npz), fit the quantizers on the train split and "
                                   "print mAP@all (ties expected, query vs database). Everything is stored under "
                                   "<home>/runs, so a second run is instant.")
    _add_source_args(p)
    p.add_argument("--weights", default=None, help="a state_dict file for the backbone (default: bundled/hub)")
    p.add_argument("--head", default=DEFAULT_HEAD, type=_head_name, choices=_head_choices(),
                   help=f"hashing head method (default {DEFAULT_HEAD}; `hashviz heads` describes them)")
    p.add_argument("--bits", dest="bit_lengths", type=int, nargs="+", default=None,
                   help="bit lengths (default 16 32 48 64)")
    p.add_argument("--quantizers", "-q", nargs="+", default=None, choices=list(QUANTIZERS),
                   help="quantizers to fit (sign itq hq random rr; default sign itq hq + the head's paired ones, "
                        "e.g. random search for spherical, rr for pca)")
    p.add_argument("--epochs", type=_int_at_least(1, "--epochs 20"), default=None, help="head training epochs")
    p.add_argument("--lr", type=float, default=None, help="head learning rate")
    p.add_argument("--hidden", type=_int_at_least(1, "--hidden 256"), nargs="*", default=None,
                   help="head hidden widths (none: linear head)")
    p.add_argument("--head-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a loss option of the head, e.g. lambda_q=0 (repeatable; `python -m hashviz heads` lists "
                        "them)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--home", type=_folder, default=None,
                   help="hashviz home folder (default $HASHVIZ_HOME or ~/.hashviz)")
    p.add_argument("--json", action="store_true", help='print one JSON object {"runs": [...]} on stdout')
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args) -> int:
    from hashviz.pipeline import format_summary, prepare
    from hashviz.store import RunStore

    dataset_options = _dataset_options(args)
    head_options = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None}
    if args.hidden is not None:
        head_options["hidden"] = tuple(args.hidden)
    for method, opts in _parse_head_options(args.head_option).items():
        if method and method != args.head:
            raise InvalidInputError(f"head option for {method!r} given while preparing head {args.head!r}",
                                    "drop the METHOD: prefix, or use it with `table`")
        if args.dataset != "embeddings":
            _check_head_options(args.head, opts)
        head_options.update(opts)
    bars = _StageBars(enabled=True)
    try:
        result = prepare(args.dataset, args.backbone, args.head, args.bit_lengths, store=RunStore(args.home),
                         seed=args.seed, dataset_options=dataset_options, head_options=head_options,
                         progress=bars, quantizers=args.quantizers, weights=args.weights)
    finally:
        bars.close()
    if args.json:
        out = {"runs": [{"n_bits": r.n_bits, "embeddings": str(r.embeddings), "map": dict(r.map)}
                        for r in result.runs],
               "key": result.key, "store": str(result.root / "runs"), "seconds": result.seconds,
               "cached": result.cached}
        print(json.dumps(to_jsonable(out, strict=False), indent=2))
    else:
        print("\n".join(format_summary(result)))
    return 0


@command
def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list dataset sources and whether each is usable offline now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(args) -> int:
    from hashviz.data import list_datasets

    rows = []
    for e in list_datasets():
        ok, why = e.available_offline()
        rows.append({"name": e.name, "description": e.description, "offline": bool(ok), "status": why,
                     "default": bool(e.default), "needs_path": bool(e.needs_path)})
    _print_listing(rows, args.json)
    return 0


@command
def add_backbones(sub) -> None:
    p = sub.add_parser("backbones", help="list backbones and whether their weights are on disk now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backbones)


def cmd_backbones(args) -> int:
    from hashviz.features import list_backbones

    rows = []
    for b in list_backbones():
        ok, why = b.available_offline()
        rows.append({"name": b.name, "description": b.description, "output_dim": b.output_dim,
                     "offline": bool(ok), "status": why})
    _print_listing(rows, args.json)
    return 0


@command
def add_heads(sub) -> None:
    p = sub.add_parser("heads", help="list the hashing-head methods, their papers and loss options")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_heads)


def cmd_heads(args) -> int:
    from hashviz.heads.losses import get_method, list_methods, method_options

    rows = []
    for name in list_methods():
        cls = get_method(name)
        rows.append({"name": name, "paper": cls.paper, "aliases": list(cls.aliases),
                     "multilabel": bool(cls.supports_multilabel), "needs_hierarchy": bool(cls.needs_hierarchy),
                     "paired_quantizers": list(cls.paired_quantizers), "options": method_options(name)})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        extra = [x for x, on in (("multi-label", r["multilabel"]), ("needs a hierarchy", r["needs_hierarchy"])) if on]
        print(f"{r['name']:<10} {r['paper']}" + (f"  [{', '.join(extra)}]" if extra else ""))
        opts = "  ".join(f"{k}={v!r}" for k, v in r["options"].items())
        print(f"{'':<10} options: {opts or '(none)'}")
    return 0


def _print_listing(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows) + 2
    for r in rows:
        mark = "offline ok " if r["offline"] else "unavailable"
        print(f"{r['name']:<{width}} {mark}  {r['description']}")
        print(f"{'':<{width}} {'':11}  {r['status']}")


@command
def add_train_backbone(sub) -> None:
    p = sub.add_parser("train-backbone", help="recreate the bundled MNIST CNN weights",
                       description="Train the small MNIST CNN on the mnist5k train split only and write its "
                                   "state_dict (and a .sha256 file beside it).")
    p.add_argument("--out", default=None, help="output file (default: the bundled file)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--epochs", type=_int_at_least(1, "--epochs 12"), default=None,
                   help="training epochs (default: as the bundled weights)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_backbone)


def cmd_train_backbone(args) -> int:
    from hashviz.features import train_mnist_cnn

    bar = _progress(None, "train mnist_cnn")

    def tick(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    kwargs = {"epochs": args.epochs} if args.epochs is not None else {}
    try:
        info = train_mnist_cnn(args.out, seed=args.seed, progress=tick, **kwargs)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"wrote {info['path']} (sha256 {info['sha256']})")
        print(f"train accuracy {info['train_accuracy']:.4f}, query accuracy {info['query_accuracy']:.4f}, "
              f"{info['seconds']:.1f} s")
    return 0


@command
def add_table(sub) -> None:
    p = sub.add_parser("table", help="results table: every head × bit length × quantizer → Markdown + CSV",
                       description="Prepare each head method (cached in the run store), fit every quantizer and "
                                   "write mAP@all (ties expected), mAP@1000, P@r<=2, quantization error and the "
                                   "time of each cell to a Markdown file and a CSV beside it. Interrupted runs "
                                   "continue where they stopped. With --dataset embeddings --path FILE nothing is "
                                   "trained: one row per code length in the file.")
    _add_source_args(p)
    p.add_argument("--heads", nargs="+", default=["all"], type=_head_name, choices=_head_choices(allow_all=True),
                   help="head methods, or all (default; not for an embeddings file, which has no head)")
    p.add_argument("--bits", dest="bit_lengths", type=int, nargs="+", default=None,
                   help="bit lengths (default 16 32 64; for an embeddings file: every length in the file)")
    p.add_argument("--quantizers", "-q", nargs="+", default=["sign", "itq", "hq", "random", "rr"],
                   choices=list(QUANTIZERS))
    p.add_argument("--epochs", type=_int_at_least(1, "--epochs 20"), default=None,
                   help="head training epochs (default: prepare's)")
    p.add_argument("--head-option", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
                   help="a loss option for every head (KEY=VALUE) or one (dpsh:lambda_q=0); repeatable")
    _add_protocol_args(p)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--home", type=_folder, default=None,
                   help="hashviz home folder (default $HASHVIZ_HOME or ~/.hashviz)")
    p.add_argument("--out", default="docs/results.md",
                   help="Markdown output (CSV: same name, .csv); sections written by `penalty` are kept")
    p.add_argument("--csv", default=None, help="CSV output (default: --out with .csv)")
    p.add_argument("--json", action="store_true", help="also print the cells as JSON on stdout")
    p.set_defaults(func=cmd_table)


def cmd_table(args) -> int:
    from pathlib import Path

    from hashviz.results import results_table
    from hashviz.results_render import write_csv, write_markdown
    from hashviz.store import RunStore

    dataset_options = _dataset_options(args)
    head_options = {"epochs": args.epochs} if args.epochs is not None else {}
    per_method = _parse_head_options(args.head_option)
    for method, opts in per_method.items():
        if method:
            _check_head_options(method, opts)
        else:
            from hashviz.heads.losses import list_methods

            for name in list_methods():  # options for every head: check the type where a head has the option
                _check_head_options(name, opts, known_only=True)
    head_options.update(per_method.pop("", {}))
    bars = _StageBars(enabled=True)
    current = [None]

    def progress(head, stage, done, total):
        if current[0] != head:
            bars.close()
            bars.stage = None
            current[0] = head
            print(f"head {head}" if head else "embeddings file", file=sys.stderr)
        bars(stage, done, total)

    try:
        table = results_table(args.dataset, args.backbone, args.heads, args.bit_lengths, args.quantizers,
                              store=RunStore(args.home), seed=args.seed, dataset_options=dataset_options,
                              head_options=head_options, method_options=per_method, protocol=args.protocol,
                              protocol_k=args.protocol_k, progress=progress)
    finally:
        bars.close()
    out = Path(args.out)
    csv_path = Path(args.csv) if args.csv else out.with_suffix(".csv")
    command_line = "python -m hashviz table " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "table" else ""
    write_markdown(table, out, command=command_line)
    write_csv(table, csv_path)
    if args.json:
        from dataclasses import asdict

        print(json.dumps(to_jsonable({"protocol": table.protocol, "cells": [c.to_dict() for c in table.cells],
                                      "checks": table.checks(), "heads": [asdict(d) for d in table.diagnostics],
                                      "spread": [c.to_dict() for c in table.spread]}, strict=False), indent=2))
    else:
        for n in table.bit_lengths:
            print(f"{n} bits, {table.map_label}: " + "  ".join(
                f"{h or 'file'} {table.best(h, n).map:.3f} ({table.best(h, n).quantizer})" for h in table.row_heads))
        bad = [c for c in table.checks() if not c["ok"]]
        print(f"checks: {len(table.checks()) - len(bad)} of {len(table.checks())} hold"
              + "".join(f"\n  FAILS {c['check']}: {c['head']} {c['n_bits']} bits {c['value']:.4f}" for c in bad))
        for h, why in table.left_out:
            print(f"left out {h}: {why}")
        print(f"wrote {out} and {csv_path} ({table.seconds:.0f} s)")
    return 0


@command
def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="prepared runs: list, rename, delete; check and clean the store",
                       description="Each prepared run has a unique name (renamable; names never touch results). "
                                   "KEY is a run key, a unique start of one (4+ digits) or a run's name. `check` "
                                   "lists crash leftovers and damaged runs (exit 1 when there are any); `clean` "
                                   "removes the leftovers whose writer is gone.")
    verbs = p.add_subparsers(dest="runs_command", required=True)
    for name, help_text in (("list", "every prepared run, newest first"),
                            ("rename", "give a run a new (unique) name"),
                            ("delete", "remove a run and what no other run uses"),
                            ("check", "list crash leftovers, interrupted writes and damaged runs"),
                            ("clean", "remove leftovers whose writer is gone, and orphans")):
        v = verbs.add_parser(name, help=help_text, description=help_text)
        if name in ("rename", "delete"):
            v.add_argument("key", metavar="KEY", help="run key, a unique start of one, or the run's name")
        if name == "rename":
            v.add_argument("name", metavar="NAME", help="the new name (quote it)")
        if name == "delete":
            v.add_argument("--yes", "-y", action="store_true", help="delete without asking")
        if name == "clean":
            v.add_argument("--dry-run", action="store_true", help="only say what would be removed")
        v.add_argument("--home", default=None, help="hashviz home folder (default $HASHVIZ_HOME or ~/.hashviz)")
        v.add_argument("--json", action="store_true", help="print one JSON value on stdout")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    import time

    from hashviz import catalog
    from hashviz.store import RunStore

    store = RunStore(args.home)
    verb = args.runs_command
    if verb == "list":
        runs = catalog.list_runs(store)
        if args.json:
            print(json.dumps([r.to_dict() for r in runs], indent=2))
        elif not runs:
            print(f"no prepared runs in {store.runs}")
        for r in runs if not args.json else ():
            what = " · ".join(x for x in (r.dataset, r.backbone, r.head) if x)
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)) if r.created else "?"
            print(f"{r.key}  {r.name}\n{'':18}{what}, {'/'.join(map(str, r.bit_lengths))} bits, "
                  f"{', '.join(r.quantizers)}; prepared {when}")
        return 0
    if verb == "rename":
        key = catalog.resolve_run(store, args.key)
        old = catalog.run_name(store, key)
        new = catalog.rename_run(store, key, args.name)
        if args.json:
            print(json.dumps({"key": key, "old": old, "name": new}))
        else:
            print(f"renamed run {key}: {old!r} → {new!r}")
        return 0
    if verb == "delete":
        key = catalog.resolve_run(store, args.key)
        plan = catalog.delete_run(store, key, dry_run=True)
        if not args.yes:
            print(_format_delete(plan), file=sys.stderr)
            if not sys.stdin.isatty():
                print("nothing deleted: add --yes to delete without a question", file=sys.stderr)
                return 1
            if input("delete? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing deleted", file=sys.stderr)
                return 1
        report = catalog.delete_run(store, key)
        print(json.dumps(report.to_dict(), indent=2) if args.json else _format_delete(report))
        return 0
    dry_run = bool(getattr(args, "dry_run", False))
    problems = catalog.clean(store, dry_run=dry_run) if verb == "clean" else catalog.check(store)
    if args.json:
        print(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        done = {"check": "problem", "clean": "would remove" if dry_run else "removed"}[verb]
        for p in problems:
            mark = "" if verb == "clean" else (" [clean removes it]" if p.removable else "")
            print(f"{p.kind:<16} {p.path}\n{'':17}{p.detail}{mark}")
        if not problems:
            print("nothing to clean" if verb == "clean" else f"no problems in {store.root}")
        elif verb == "check":
            print(f"{len(problems)} {done}{'s' if len(problems) != 1 else ''}; "
                  f"`python -m hashviz runs clean` removes {sum(p.removable for p in problems)} of them")
        else:
            print(f"{done} {len(problems)}")
    return 1 if verb == "check" and problems else 0


def _format_delete(report) -> str:
    verb = "would remove" if report.dry_run else "removed"
    lines = [f"run {report.key} ({report.name}):"]
    for stage, keys in report.removed.items():
        lines.append(f"  {verb} {stage}: {', '.join(keys)}")
    for stage, keys in report.kept.items():
        lines.append(f"  kept (another run uses it) {stage}: {', '.join(keys)}")
    return "\n".join(lines)


@command
def add_query(sub) -> None:
    p = sub.add_parser("query", help="an image of your own → its code and nearest database items, per bit length",
                       description="Prepare IMAGE like the run's dataset images (digits: the MNIST recipe, any "
                                   "size and polarity; colour datasets: centre crop and resize), run it through the "
                                   "run's backbone and hashing head, and print, per bit length and quantizer, its "
                                   "code and the top-k database items by Hamming distance (index into the dataset, "
                                   "class, distance; ties in database order) with the majority class. Without "
                                   "--run, the run of --dataset/--backbone/--head is prepared first (cached).")
    p.add_argument("image", metavar="IMAGE_FILE", help="a PNG, JPEG, GIF, BMP or WebP file")
    p.add_argument("--run", default=None, metavar="KEY",
                   help="a prepared run: key, unique start of one, or name (`hashviz runs list`)")
    _add_source_args(p)
    p.add_argument("--head", default=DEFAULT_HEAD, type=_head_name, choices=_head_choices(),
                   help=f"hashing head method when preparing (default {DEFAULT_HEAD})")
    p.add_argument("--weights", default=None, help="the backbone's state_dict file, if the run used one")
    p.add_argument("--bits", dest="bit_lengths", type=_int_at_least(1, "--bits 16 32"), nargs="+", default=None,
                   help="bit lengths (default: all of the run's; when preparing, 16 32 48 64)")
    p.add_argument("--quantizer", "-q", nargs="+", default=None, choices=list(QUANTIZERS),
                   help="quantizers (default: those the run stored, e.g. sign itq hq)")
    p.add_argument("--top-k", type=_int_at_least(1, "--top-k 10"), default=10)
    p.add_argument("--seed", type=_seed, default=0, help="split seed when preparing")
    p.add_argument("--home", type=_folder, default=None,
                   help="hashviz home folder (default $HASHVIZ_HOME or ~/.hashviz)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_query)


def _read_image_file(path: str) -> bytes:
    from pathlib import Path

    from hashviz.data.drawing import MAX_IMAGE_BYTES
    from hashviz.errors import DataUnavailableError

    p = Path(path).expanduser()
    if not p.is_file():
        raise DataUnavailableError(f"image file not found: {path}", "give the path of a PNG or JPEG file")
    if p.stat().st_size > MAX_IMAGE_BYTES:
        raise InvalidInputError(f"{path} is {p.stat().st_size / 1e6:.1f} MB, over the {MAX_IMAGE_BYTES / 1e6:.0f} MB "
                                "limit for one image", "make the picture smaller")
    try:
        return p.read_bytes()
    except OSError as e:
        raise DataUnavailableError(f"cannot read {path} ({e.strerror or e})", "check the file's permissions") \
            from None


def cmd_query(args) -> int:
    from hashviz.data.drawing import open_image
    from hashviz.session.query_image import load_run_model, query_image, stored_inputs
    from hashviz.session.runs import Workspace

    data = _read_image_file(args.image)
    open_image(data, name=args.image).close()  # a bad file is refused before any preparation
    ws = Workspace(args.home)
    if args.run is not None:
        from hashviz.catalog import resolve_run

        key = resolve_run(ws.store, args.run)
    else:
        from hashviz.pipeline import prepare

        bars = _StageBars(enabled=True)
        try:
            key = prepare(args.dataset, args.backbone, args.head, args.bit_lengths, store=ws.store, seed=args.seed,
                          dataset_options=_dataset_options(args), progress=bars, weights=args.weights).key
        finally:
            bars.close()
    model = load_run_model(ws.store, key, weights=args.weights)
    embs, fitted = stored_inputs(ws, key, args.bit_lengths, args.quantizer)
    result = query_image(model, data, embs, fitted, k=args.top_k, name=args.image)
    names = next(iter(embs.values())).class_names
    if args.json:
        print(json.dumps(to_jsonable({"image": str(args.image), "name": ws.names().get(key, ""),
                                      **result.to_dict(names)}, strict=False), indent=2))
        return 0
    h, w = result.image.shape[:2]
    print(f"{args.image} → run {key} ({ws.names().get(key, '')}); the network sees {w}×{h}: "
          f"{model.recipe.describe()}")
    for r in result.results:
        print(f"\n{r.n_bits} bits · {r.label} · code {r.code}\n  predicted {r.predicted_text(names)} "
              f"({r.votes} of the top {len(r.rows)})")
        print(f"  {'rank':>4} {'index':>7} {'class':<12} {'distance':>8}")
        for i in range(len(r.rows)):
            print(f"  {i + 1:>4} {int(r.ids[i]):>7} {r.class_text(names, i)[:12]:<12} {int(r.distances[i]):>8}")
    return 0


@command
def add_penalty(sub) -> None:
    p = sub.add_parser("penalty", help="penalty vs rotation: one head per λ × bit length, sign / ITQ / HQ on each",
                       description="The HQ paper's claim on your data: train HEAD once per quantization weight λ "
                                   "(its own option: lambda_q for dpsh/csq/shc, kl_weight for shrewd, the "
                                   "continuation speed beta_gamma for hashnet) and bit length, quantize each by "
                                   "sign, ITQ and HQ, and compare the best penalised sign codes with λ = 0 + HQ. "
                                   "Heads and quantizers are cached in the run store: an interrupted sweep "
                                   "continues.")
    _add_source_args(p)
    p.add_argument("--head", nargs="+", default=["dpsh"], type=_head_name, choices=_head_choices(),
                   help="head method(s) with a quantization weight")
    p.add_argument("--lambdas", type=float, nargs="+", default=[0, 0.01, 0.1, 1, 10], help="λ values (0 included)")
    p.add_argument("--bits", dest="bit_lengths", type=int, nargs="+", default=[16, 32, 64], help="bit lengths")
    p.add_argument("--quantizers", "-q", nargs="+", default=list(DEFAULT_QUANTIZERS), choices=list(QUANTIZERS))
    p.add_argument("--epochs", type=_int_at_least(1, "--epochs 20"), default=None,
                   help="head training epochs (default: prepare's)")
    _add_protocol_args(p)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--home", type=_folder, default=None,
                   help="hashviz home folder (default $HASHVIZ_HOME or ~/.hashviz)")
    p.add_argument("--out", default=None,
                   help="a Markdown file to put the section(s) in (e.g. docs/results.md; replaced if there)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_penalty)


def cmd_penalty(args) -> int:
    from hashviz.penalty import markdown, penalty_option, penalty_sweep
    from hashviz.store import RunStore

    heads = [str(h).strip().lower() for h in args.head]
    for h in heads:  # refuse a head without a weight before training anything
        penalty_option(h)
    head_options = {"epochs": args.epochs} if args.epochs is not None else {}
    bars = _StageBars(enabled=not args.json)
    current = [None]
    sweeps = []
    command_line = "python -m hashviz penalty " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "penalty" else ""
    try:
        for h in heads:
            def progress(lam, stage, done, total, h=h):
                if current[0] != (h, lam):
                    bars.close()
                    bars.stage = None
                    current[0] = (h, lam)
                    if not args.json:
                        print(f"{h} λ={lam:g}", file=sys.stderr)
                bars(stage, done, total)

            sweeps.append(penalty_sweep(h, args.lambdas, args.bit_lengths, dataset=args.dataset, backbone=args.backbone,
                                        quantizers=args.quantizers, protocol=args.protocol,
                                        protocol_k=args.protocol_k, store=RunStore(args.home), seed=args.seed,
                                        dataset_options=_dataset_options(args), head_options=head_options,
                                        progress=progress))
    finally:
        bars.close()
    if args.out:
        from hashviz.results_render import write_section

        for sw in sweeps:
            write_section(args.out, f"penalty-{sw.head}", markdown(sw, command=command_line))
    if args.json:
        print(json.dumps(to_jsonable({"sweeps": [sw.to_dict() for sw in sweeps]}, strict=False), indent=2))
        return 0
    for sw in sweeps:
        print(markdown(sw))
    if args.out:
        print(f"wrote {len(sweeps)} section(s) to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashviz", description="Deep hashing explorer (headless).")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from hashviz.embeddings import npz_size_limit

    try:
        with npz_size_limit(None):  # the command line reads embeddings files of any size (the app has a limit)
            return int(args.func(args) or 0)
    except HashvizError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
