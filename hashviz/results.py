"""The results table: every head method × bit length × quantizer on one dataset, as Markdown and CSV.

``python -m hashviz table --dataset mnist5k --backbone mnist_cnn --heads all --bits 16 32 64
--quantizers sign itq hq random`` calls :func:`results_table` then :func:`write_markdown` / :func:`write_csv`.
Every number comes from :func:`hashviz.pipeline.prepare` (one call per head method), so the table, the CLI's
``prepare`` and the app show the same stored results; a second run reads them back from the run store, and a run
stopped half-way continues where it stopped. Times are those of the run that computed each cell.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hashviz.errors import InvalidInputError
from hashviz.evaluate import QUANTIZER_LABELS
from hashviz.store import RunStore

MAP_TARGET = 0.85  # sanity target: a supervised head's best quantizer at the target bit length
TARGET_BITS = 32

CSV_COLUMNS = ("dataset", "backbone", "head", "n_bits", "quantizer", "map_all", "map_at_k", "p_at_k",
               "p_within_radius", "quantization_error", "fit_seconds", "eval_seconds", "cell_seconds",
               "head_train_seconds", "top_k", "radius", "ties", "n_query", "n_database", "n_train", "seed",
               "hierarchical_at_k")


@dataclass(frozen=True)
class Cell:
    """One head × bits × quantizer result. ``cell_seconds`` = quantizer fit + scoring; the head's own training
    time (shared by the quantizers of that head and bit length) is ``head_train_seconds``."""

    dataset: str
    backbone: str
    head: str
    n_bits: int
    quantizer: str
    map_all: float
    map_at_k: float
    p_at_k: float
    p_within_radius: float
    quantization_error: float
    fit_seconds: float
    eval_seconds: float
    cell_seconds: float
    head_train_seconds: float
    top_k: int
    radius: int
    ties: str
    n_query: int
    n_database: int
    n_train: int
    seed: int
    # mean semantic similarity (label hierarchy) of the top_k nearest database items; NaN without a hierarchy
    hierarchical_at_k: float = math.nan


@dataclass(frozen=True)
class HeadDiagnostics:
    """One trained head (method × bits): training time and final loss, and for centre-based methods the share
    of query rows whose nearest centre (Hamming, sign codes, no rotation) is a true class — OrthoHash's
    "codebook accuracy" — and the minimum Hamming distance between the centres."""

    head: str
    n_bits: int
    train_seconds: float
    final_loss: float
    codebook_accuracy: float = math.nan
    centers_min_distance: float = math.nan


@dataclass(frozen=True)
class ResultsTable:
    dataset: str
    backbone: str
    heads: tuple[str, ...]
    bits: tuple[int, ...]
    quantizers: tuple[str, ...]
    seed: int
    cells: tuple[Cell, ...]
    seconds: float
    summary: str = ""
    head_options: Mapping = field(default_factory=dict)
    diagnostics: tuple[HeadDiagnostics, ...] = ()
    method_options: Mapping = field(default_factory=dict)
    left_out: tuple[tuple[str, str], ...] = ()  # (head, why) of heads "all" could not include

    def cell(self, head: str, n_bits: int, quantizer: str) -> Cell:
        for c in self.cells:
            if c.head == head and c.n_bits == n_bits and c.quantizer == quantizer:
                return c
        raise KeyError((head, n_bits, quantizer))

    def best(self, head: str, n_bits: int) -> Cell:
        cells = [c for c in self.cells if c.head == head and c.n_bits == n_bits]
        return max(cells, key=lambda c: (-math.inf if math.isnan(c.map_all) else c.map_all))

    def checks(self) -> list[dict]:
        """The sanity checks: best quantizer ≥ MAP_TARGET at TARGET_BITS per head, and HQ ≥ sign per head and
        bit length (when both were run). Each row: ``check, head, n_bits, value, ok``."""
        out = []
        if TARGET_BITS in self.bits:
            for h in self.heads:
                b = self.best(h, TARGET_BITS)
                out.append({"check": f"best mAP@all at {TARGET_BITS} bits ≥ {MAP_TARGET}", "head": h,
                            "n_bits": TARGET_BITS, "value": b.map_all, "detail": b.quantizer,
                            "ok": bool(b.map_all >= MAP_TARGET)})
        if "hq" in self.quantizers and "sign" in self.quantizers:
            for h in self.heads:
                for n in self.bits:
                    d = self.cell(h, n, "hq").map_all - self.cell(h, n, "sign").map_all
                    out.append({"check": "HQ − sign mAP@all ≥ 0", "head": h, "n_bits": n, "value": d,
                                "detail": "", "ok": bool(d >= 0)})
        return out


def _heads(heads: Sequence[str] | str, *, has_hierarchy: bool = True) -> tuple[tuple[str, ...], tuple]:
    """(head names, left out): ``all`` is every registered method, less those that need a label hierarchy when
    the dataset has none (listed with the reason); a method named explicitly is always kept (and its own error
    says what is missing)."""
    from hashviz.heads.losses import get_method, list_methods

    if isinstance(heads, str):
        heads = (heads,)
    heads = [str(h).strip().lower() for h in heads]
    if not heads:
        raise InvalidInputError("no head methods given", "e.g. --heads all, or --heads cel csq orthohash")
    if "all" not in heads:
        return tuple(dict.fromkeys(get_method(h).name for h in heads)), ()
    names, left_out = [], []
    for m in list_methods():
        if get_method(m).needs_hierarchy and not has_hierarchy:
            left_out.append((m, "needs a label hierarchy and this dataset has none (dataset option hierarchy=…)"))
        else:
            names.append(m)
    return tuple(names), tuple(left_out)


def _warm_up_metrics() -> None:
    """Compile the metric kernels (numba) on tiny data so the first cell's time does not include compilation."""
    import numpy as np

    from hashviz.codes import pack_bits
    from hashviz.retrieval.metrics import mean_average_precision, precision_at_k, precision_within_radius

    rng = np.random.default_rng(0)
    codes = pack_bits(rng.standard_normal((40, 16)) > 0)
    y = np.arange(40) % 4
    for ties in ("expected", "stable"):
        mean_average_precision(codes, codes, y, y, ties=ties)
        mean_average_precision(codes, codes, y, y, top_k=10, ties=ties)
        precision_at_k(codes, codes, y, y, 10, ties=ties)
    precision_within_radius(codes, codes, y, y, radius=2)


def results_table(dataset: str = "mnist5k", backbone: str = "mnist_cnn", heads: Sequence[str] | str = "all",
                  bits: Sequence[int] = (16, 32, 64), quantizers: Sequence[str] = ("sign", "itq", "hq", "random"),
                  *, store: RunStore | str | Path | None = None, seed: int = 0,
                  dataset_options: Mapping | None = None, head_options: Mapping | None = None,
                  method_options: Mapping[str, Mapping] | None = None,
                  progress: Callable[[str, str, int, int], object] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ResultsTable:
    """Prepare every head (cached per config key) and collect one :class:`Cell` per head × bits × quantizer.

    ``head_options`` apply to every head, ``method_options[method]`` to one (e.g. ``{"dpsh": {"lambda_q": 0}}``).
    ``progress(head, stage, done, total)`` relays :func:`hashviz.pipeline.prepare`'s progress per head.
    Protocol: the dataset's query vs database split, quantizers fitted on its train split, mAP@all with
    expected ties, mAP@k and P@k with k = 1000 (clipped to the database), P@r≤2 (precision of the database items
    within Hamming radius 2, 0 for a query with none), quantization error of the rotated database embeddings.
    """
    from hashviz.embeddings import Embeddings
    from hashviz.pipeline import TOP_K, check_bits, prepare

    t0 = time.perf_counter()
    store = store if isinstance(store, RunStore) else RunStore(store)
    similarity = _class_similarity(dataset, seed, dataset_options)
    names, left_out = _heads(heads, has_hierarchy=similarity is not None)
    from hashviz.heads.losses import get_method

    per_method = {get_method(m).name: dict(o) for m, o in dict(method_options or {}).items()}
    unused = sorted(set(per_method) - set(names))
    if unused:
        raise InvalidInputError(f"options given for head(s) not in the table: {', '.join(unused)}",
                                f"heads in this table: {', '.join(names)}")
    bits_t = check_bits(bits, head=True)
    qnames = tuple(dict.fromkeys(str(q).strip().lower() for q in quantizers))
    cells: list[Cell] = []
    diagnostics: list[HeadDiagnostics] = []
    summary = ""
    _warm_up_metrics()
    for head in names:
        def relay(stage, done, total, head=head):
            if progress is not None:
                progress(head, stage, done, total)

        opts = {**dict(head_options or {}), **dict(per_method.get(head, {}))}
        res = prepare(dataset, backbone, head, bits_t, store=store, seed=seed, dataset_options=dataset_options,
                      head_options=opts, quantizers=qnames, progress=relay, should_stop=should_stop)
        summary = res.summary
        for run in res.runs:
            emb = Embeddings.load(run.embeddings, max_bytes=None)
            diag = head_diagnostics(head, run, store, emb=emb)
            head_s = diag.train_seconds if diag is not None else math.nan
            if diag is not None:
                diagnostics.append(diag)
            hier = _hierarchical_scores(emb, run, qnames, store, similarity, TOP_K) if similarity is not None else {}
            for q in qnames:
                ev = run.evaluations.get(q)
                if not ev:
                    raise InvalidInputError(f"no stored evaluation for {head} {run.n_bits} bits {q}",
                                            "delete that run's folder under runs/prepared and run the table again")
                fit_s, eval_s = float(ev.get("fit_seconds", math.nan)), float(ev.get("eval_seconds", math.nan))
                cells.append(Cell(
                    dataset=res.dataset, backbone=str(res.backbone), head=head, n_bits=run.n_bits, quantizer=q,
                    map_all=float(ev["map"]), map_at_k=float(ev["map_at_k"]), p_at_k=float(ev["p_at_k"]),
                    p_within_radius=float(ev["p_within_radius"]),
                    quantization_error=float(ev["quantization_error"]), fit_seconds=fit_s, eval_seconds=eval_s,
                    cell_seconds=fit_s + eval_s, head_train_seconds=head_s, top_k=int(ev.get("top_k", TOP_K)),
                    radius=int(ev.get("radius", 2)), ties=str(ev.get("ties", "expected")),
                    n_query=int(ev["n_query"]), n_database=int(ev["n_database"]), n_train=int(ev["n_train"]),
                    seed=int(seed), hierarchical_at_k=hier.get(q, math.nan)))
    return ResultsTable(dataset=dataset, backbone=backbone, heads=names, bits=bits_t, quantizers=qnames,
                        seed=int(seed), cells=tuple(cells), seconds=time.perf_counter() - t0, summary=summary,
                        head_options=dict(head_options or {}), diagnostics=tuple(diagnostics),
                        method_options=per_method, left_out=left_out)


def _class_similarity(dataset: str, seed: int, dataset_options: Mapping | None):
    """The (c, c) semantic class similarity of the dataset's label hierarchy, or None when it has none."""
    from hashviz.data import get_dataset
    from hashviz.retrieval.hierarchical import dataset_similarity

    return dataset_similarity(get_dataset(dataset, seed=seed, **dict(dataset_options or {})))


def _hierarchical_scores(emb, run, qnames, store, similarity, top_k: int) -> dict[str, float]:
    """Mean semantic similarity of the top k (ties expected) for each stored quantizer of one run."""
    from hashviz.pipeline import load_quantizer
    from hashviz.retrieval.hierarchical import mean_semantic_similarity_at_k

    query, database = emb.part("query"), emb.part("database")
    out = {}
    for q in qnames:
        fitted = load_quantizer(run.quantizers[q], store) if q in run.quantizers else None
        if fitted is None:
            continue
        out[q] = mean_semantic_similarity_at_k(fitted.encode(query.z), fitted.encode(database.z), query.labels,
                                               database.labels, similarity, min(top_k, database.n))
    return out


def head_diagnostics(head: str, run, store: RunStore, *, emb=None) -> HeadDiagnostics | None:
    """Diagnostics of the head behind one :class:`~hashviz.pipeline.PreparedRun` (None for an embeddings file or
    a head entry that is gone): also used by the app's Data & model page. ``emb``: the run's embeddings when
    the caller has them loaded already."""
    import numpy as np

    from hashviz.embeddings import Embeddings
    from hashviz.heads.centers import min_pairwise_distance, nearest_center_accuracy

    entry = store.get_key("heads", run.head_key) if run.head_key else None
    if entry is None:
        return None
    loss = entry.extra.get("final_loss")
    seconds = entry.extra.get("train_seconds")
    out = HeadDiagnostics(head=head, n_bits=run.n_bits, train_seconds=math.nan if seconds is None else float(seconds),
                          final_loss=math.nan if loss is None else float(loss))
    centers = entry.arrays.get("centers")
    if centers is None or np.asarray(centers).ndim != 2:
        return out
    query = (emb if emb is not None else Embeddings.load(run.embeddings, max_bytes=None)).part("query")
    from dataclasses import replace

    return replace(out, codebook_accuracy=nearest_center_accuracy(query.z, query.labels, centers),
                   centers_min_distance=float(min_pairwise_distance(centers)))


# ---- output ---------------------------------------------------------------------------------------------------
def write_csv(table: ResultsTable, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        for c in table.cells:
            row = asdict(c)
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _f(x: float, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _s(x: float) -> str:
    return "—" if math.isnan(x) else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def markdown(table: ResultsTable, *, command: str = "") -> str:
    """The results as a Markdown page: protocol, headline (mAP@all per bit length), checks, the full table."""
    qlab = [QUANTIZER_LABELS.get(q, q) for q in table.quantizers]
    c0 = table.cells[0] if table.cells else None
    lines = ["# Results", ""]
    if command:
        lines += ["Produced by", "", "```", command, "```", ""]
    from hashviz import __version__

    lines += [
        f"hashviz {__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; seed {table.seed}; total {table.seconds:.0f} s for this run "
        "(cells read back from the run store keep the time of the run that computed them).", ""]
    if c0 is not None:
        lines += [
            f"**Protocol.** {table.summary or table.dataset}. Backbone `{table.backbone}`; one hashing head per "
            f"method and bit length, trained on the train split's cached backbone features; quantizers fitted on "
            f"the train split; {c0.n_query:,} queries against {c0.n_database:,} database items; relevant = same "
            f"class. mAP@all with **expected** ties (the average over random orders of equal Hamming distances), "
            f"mAP@{c0.top_k} and P@{c0.top_k} the same way; P@r≤{c0.radius}: precision of the database items "
            f"within Hamming radius {c0.radius} (0 for a query with none); QE: quantization error, mean "
            "(|u| − 1)² over the rotated database embeddings rescaled to norm √bits. Time: quantizer fit + "
            "scoring per cell (the head's training time is its own column).", ""]
    if table.left_out:
        lines += ["**Left out:** " + "; ".join(f"{h} — {why}" for h, why in table.left_out) + ".", ""]
    if table.head_options or table.method_options:
        given = [f"every head: {dict(table.head_options)}"] if table.head_options else []
        given += [f"{m}: {o}" for m, o in table.method_options.items()]
        lines += ["**Options changed from the defaults** — " + "; ".join(given) + ".", ""]
    lines += _headline(table)
    lines += ["## mAP@all (ties expected)", ""]
    for n in table.bits:
        lines += [f"**{n} bits**", "", "| head | " + " | ".join(qlab) + " | HQ − sign |",
                  "|---|" + "---:|" * (len(qlab) + 1)]
        for h in table.heads:
            vals = [table.cell(h, n, q).map_all for q in table.quantizers]
            best = max(vals)
            row = [f"**{_f(v)}**" if v == best else _f(v) for v in vals]
            diff = (_f(table.cell(h, n, "hq").map_all - table.cell(h, n, "sign").map_all, 4)
                    if {"hq", "sign"} <= set(table.quantizers) else "—")
            lines.append(f"| {h} | " + " | ".join(row) + f" | {diff} |")
        lines.append("")
    checks = table.checks()
    if checks:
        bad = [c for c in checks if not c["ok"]]
        lines += ["## Sanity checks", "",
                  f"{len(checks) - len(bad)} of {len(checks)} hold."]
        if bad:
            lines += ["", "| check | head | bits | value |", "|---|---|---:|---:|"]
            lines += [f"| {c['check']} | {c['head']} | {c['n_bits']} | {_f(c['value'])} {c['detail']} |"
                      for c in bad]
        lines.append("")
    if table.diagnostics:
        lines += ["## Heads", "",
                  "Training time and final loss of each head; for centre-based heads the **codebook accuracy** "
                  "(share of queries whose nearest centre — Hamming distance of the sign codes, no rotation — is "
                  "their class; OrthoHash's measure, defined the same way for CSQ and SHC) and the minimum "
                  "Hamming distance between centres.", "",
                  "| head | bits | training (s) | final loss | codebook accuracy | centres min distance |",
                  "|---|---:|---:|---:|---:|---:|"]
        for d in table.diagnostics:
            dist = "—" if math.isnan(d.centers_min_distance) else f"{d.centers_min_distance:.0f}"
            lines.append(f"| {d.head} | {d.n_bits} | {_s(d.train_seconds)} | {_f(d.final_loss)} | "
                         f"{_f(d.codebook_accuracy)} | {dist} |")
        lines.append("")
    hier = any(not math.isnan(c.hierarchical_at_k) for c in table.cells)
    k = c0.top_k if c0 else "k"
    if hier:
        lines += [f"## Hierarchical retrieval: mean semantic similarity of the top {k}", "",
                  "Similarity of two classes = 1 − height of their lowest common ancestor / height of the root, "
                  "in the dataset's label hierarchy (mnist5k: the digit shape families of docs/data.md); the score "
                  f"averages it over each query's {k} nearest database items (ties expected) — SHREWD's measure. "
                  "With 400 database items per class, most of a top 1000 must come from other classes, so the score "
                  "rewards putting the same family next.", "",
                  "| head | " + " | ".join(f"{n} bits {QUANTIZER_LABELS.get(q, q)}" for n in table.bits
                                          for q in ("sign", "hq") if q in table.quantizers) + " |",
                  "|---|" + "---:|" * (len(table.bits) * len({"sign", "hq"} & set(table.quantizers)))]
        for h in table.heads:
            vals = [_f(table.cell(h, n, q).hierarchical_at_k) for n in table.bits for q in ("sign", "hq")
                    if q in table.quantizers]
            lines.append(f"| {h} | " + " | ".join(vals) + " |")
        lines.append("")
    hcol = f" hier.@{k} |" if hier else ""
    lines += ["## All scores", "",
              f"| head | bits | quantizer | mAP@all | mAP@{k} | P@r≤{c0.radius if c0 else 2} "
              f"| QE |{hcol} cell time (s) | head training (s) |",
              "|---|---:|---|---:|---:|---:|---:|" + ("---:|" if hier else "") + "---:|---:|"]
    for c in table.cells:
        hv = f" {_f(c.hierarchical_at_k)} |" if hier else ""
        lines.append(f"| {c.head} | {c.n_bits} | {QUANTIZER_LABELS.get(c.quantizer, c.quantizer)} | "
                     f"{_f(c.map_all)} | {_f(c.map_at_k)} | {_f(c.p_within_radius)} | {_f(c.quantization_error)} "
                     f"|{hv} {_s(c.cell_seconds)} | {_s(c.head_train_seconds)} |")
    lines.append("")
    return "\n".join(lines)


def _headline(table: ResultsTable) -> list[str]:
    """Observations computed from the cells (so they stay true when the table is produced again)."""
    out = ["## Headline", ""]
    qs = set(table.quantizers)
    pairs = [(h, n) for h in table.heads for n in table.bits]
    if {"hq", "sign"} <= qs:
        d = [(table.cell(h, n, "hq").map_all - table.cell(h, n, "sign").map_all, h, n) for h, n in pairs]
        top = max(d)
        out.append(f"- HQ ≥ sign in {sum(x >= 0 for x, _, _ in d)} of {len(d)} head × bits cells; mean gain "
                   f"{sum(x for x, _, _ in d) / len(d):+.4f} mAP@all, largest {top[0]:+.4f} ({top[1]}, {top[2]} "
                   "bits).")
    if {"hq", "itq"} <= qs:
        d = [table.cell(h, n, "hq").map_all - table.cell(h, n, "itq").map_all for h, n in pairs]
        out.append(f"- HQ − ITQ: mean {sum(d) / len(d):+.4f}, range {min(d):+.4f} … {max(d):+.4f}; HQ higher in "
                   f"{sum(x > 0 for x in d)} of {len(d)} cells.")
    if "random" in qs and "hq" in qs:
        d = [table.cell(h, n, "hq").map_all - table.cell(h, n, "random").map_all for h, n in pairs]
        out.append(f"- HQ − random search: mean {sum(d) / len(d):+.4f}; HQ higher in {sum(x > 0 for x in d)} of "
                   f"{len(d)} cells.")
    for n in table.bits:
        best = sorted(((table.best(h, n).map_all, h, table.best(h, n).quantizer) for h in table.heads), reverse=True)
        out.append(f"- {n} bits: best {best[0][1]} {best[0][0]:.4f} ({QUANTIZER_LABELS.get(best[0][2], best[0][2])})"
                   f", lowest best {best[-1][1]} {best[-1][0]:.4f}.")
    if "hq" in qs and any(not math.isnan(c.hierarchical_at_k) for c in table.cells):
        for n in table.bits:
            r = sorted(((table.cell(h, n, "hq").hierarchical_at_k, h) for h in table.heads), reverse=True)
            out.append(f"- Hierarchical score (top {table.cells[0].top_k}, HQ), {n} bits: "
                       + ", ".join(f"{h} {v:.4f}" for v, h in r) + ".")
    computed = sum(c.cell_seconds for c in table.cells if not math.isnan(c.cell_seconds))
    heads_s = {(c.head, c.n_bits): c.head_train_seconds for c in table.cells if not math.isnan(c.head_train_seconds)}
    out += [f"- Compute recorded in the cells: {sum(heads_s.values()):.0f} s of head training, {computed:.0f} s of "
            "quantizer fitting and scoring.", ""]
    return out


def write_markdown(table: ResultsTable, path: str | Path, *, command: str = "", notes: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(table, command=command)
    if notes:
        text += "\n" + notes.strip() + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
