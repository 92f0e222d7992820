"""The results table: every head method × bit length × quantizer on one dataset, as Markdown and CSV.

``python -m hashviz table --dataset mnist5k --backbone mnist_cnn --heads all --bits 16 32 64
--quantizers sign itq hq random rr`` calls :func:`results_table` then :func:`write_markdown` / :func:`write_csv`.
For an embeddings file (``--dataset embeddings --path FILE``) nothing is trained: the table has one row per code
length in the file (the file's ``z`` arrays), its quantizers fitted and scored the same way.
Heads and quantizers come from :func:`hashviz.pipeline.prepare` (one call per head method, cached in the run
store: a second run reads them back, a run stopped half-way continues where it stopped); every cell is then scored
by :func:`hashviz.evaluate.evaluate` — the CLI's and the app's function — under the chosen protocol, one
:class:`~hashviz.evaluate.Evaluation` per cell. Fit and head-training times are those of the run that computed
them; the scoring time is this run's.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hashviz.errors import InvalidInputError
from hashviz.evaluate import Evaluation
from hashviz.fileio import write_text_atomic
from hashviz.quantize import quantizer_label
from hashviz.store import RunStore

MAP_TARGET = 0.85  # sanity target: a supervised head's best quantizer at the target bit length
TARGET_BITS = 32
TABLE_BITS: tuple[int, ...] = (16, 32, 64)  # the default bit lengths of a table on images
FILE_DATASET = "embeddings"  # the dataset source that reads an embeddings file (no backbone, no head)

CSV_COLUMNS = ("dataset", "backbone", "head", "n_bits", "quantizer", "protocol", "map", "map_k", "map_optimistic",
               "map_pessimistic", "map_at_k", "p_at_k", "p_within_radius", "quantization_error", "fit_seconds",
               "eval_seconds", "cell_seconds", "head_train_seconds", "top_k", "radius", "ties", "n_query",
               "n_database", "n_train", "n_no_relevant", "seed", "hierarchical_at_k", "head_options")


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
    cells: tuple[Evaluation, ...]
    seconds: float
    summary: str = ""
    head_options: Mapping = field(default_factory=dict)
    diagnostics: tuple[HeadDiagnostics, ...] = ()
    method_options: Mapping = field(default_factory=dict)
    left_out: tuple[tuple[str, str], ...] = ()  # (head, why) of heads "all" could not include
    protocol: str = "hashviz"
    baselines: tuple[str, ...] = ()   # training-free heads (pca, lsh): not held to MAP_TARGET
    # the "same codes, every protocol" rows: (head, n_bits, quantizer) × protocol, at one bit length
    spread: tuple[Evaluation, ...] = ()
    # an embeddings file's table (no backbone, no heads: one row per code length): the file as the user named it
    source_file: str = ""
    split_from_file: bool = True  # False: the file had no split and a seeded one was drawn
    multilabel: bool = False

    @property
    def from_file(self) -> bool:
        return bool(self.source_file)

    @property
    def row_heads(self) -> tuple[str, ...]:
        """The head of each group of cells: the methods, or ``("",)`` for an embeddings file (no head)."""
        return self.heads if not self.from_file else ("",)

    def cell(self, head: str, n_bits: int, quantizer: str) -> Evaluation:
        for c in self.cells:
            if c.head == head and c.n_bits == n_bits and c.quantizer == quantizer:
                return c
        raise KeyError((head, n_bits, quantizer))

    def best(self, head: str, n_bits: int) -> Evaluation:
        cells = [c for c in self.cells if c.head == head and c.n_bits == n_bits]
        return max(cells, key=lambda c: (-math.inf if math.isnan(c.map) else c.map))

    @property
    def map_label(self) -> str:
        """The mAP's depth and protocol, e.g. ``mAP@all (hashviz)`` (the same for every cell of a table)."""
        return self.cells[0].map_label if self.cells else f"mAP ({self.protocol})"

    def checks(self) -> list[dict]:
        """The sanity checks: best quantizer ≥ MAP_TARGET at TARGET_BITS per supervised head, and HQ ≥ sign per
        head and bit length (when both were run). Each row: ``check, head, n_bits, value, ok``."""
        out = []
        label = self.map_label
        if TARGET_BITS in self.bits:
            for h in self.heads:
                if h in self.baselines:
                    continue
                b = self.best(h, TARGET_BITS)
                out.append({"check": f"best {label} at {TARGET_BITS} bits ≥ {MAP_TARGET}", "head": h,
                            "n_bits": TARGET_BITS, "value": b.map, "detail": b.quantizer,
                            "ok": bool(b.map >= MAP_TARGET)})
        if "hq" in self.quantizers and "sign" in self.quantizers:
            for h in self.row_heads:
                for n in self.bits:
                    d = self.cell(h, n, "hq").map - self.cell(h, n, "sign").map
                    out.append({"check": f"HQ − sign {label} ≥ 0", "head": h, "n_bits": n, "value": d,
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


def warm_up_metrics() -> None:
    """Compile the metric kernels (numba) on tiny data so the first cell's time does not include compilation."""
    import numpy as np

    from hashviz.codes import pack_bits
    from hashviz.retrieval.report import score_protocols

    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 16))
    codes = pack_bits(z > 0)
    y = np.arange(40) % 4
    score_protocols(codes, codes, y, y, "all", q_z=z, db_z=z, top_k=10)


def results_table(dataset: str = "mnist5k", backbone: str = "mnist_cnn", heads: Sequence[str] | str = "all",
                  bits: Sequence[int] | None = None,
                  quantizers: Sequence[str] = ("sign", "itq", "hq", "random", "rr"),
                  *, store: RunStore | str | Path | None = None, seed: int = 0,
                  dataset_options: Mapping | None = None, head_options: Mapping | None = None,
                  method_options: Mapping[str, Mapping] | None = None, protocol: str = "hashviz",
                  protocol_k=None, spread_bits: int | None = TARGET_BITS,
                  progress: Callable[[str, str, int, int], object] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ResultsTable:
    """Prepare every head (cached per config key) and score one :class:`Evaluation` per head × bits × quantizer.

    ``bits``: default :data:`TABLE_BITS`. ``head_options`` apply to every head, ``method_options[method]`` to one
    (e.g. ``{"dpsh": {"lambda_q": 0}}``).
    ``progress(head, stage, done, total)`` relays :func:`hashviz.pipeline.prepare`'s progress per head.
    Protocol: the dataset's query vs database split, quantizers fitted on its train split, mAP under ``protocol``
    (default ``hashviz``: mAP@all, expected ties; ``protocol_k`` overrides its depth), mAP@k and P@k with k = 1000
    (clipped to the database), P@r≤2 (precision of the database items within Hamming radius 2, 0 for a query
    with none), quantization error of the rotated database embeddings. ``spread_bits``: the bit length whose
    sign and HQ codes are also scored under every protocol (:attr:`ResultsTable.spread`; None: skip).

    ``dataset="embeddings"`` (``dataset_options={"path": FILE}``): see :func:`file_table` (no head is trained;
    ``heads`` must stay ``"all"``, and head options are refused).
    """
    from hashviz.heads.losses import get_method
    from hashviz.pipeline import check_bits, prepare
    from hashviz.retrieval.protocols import get_protocol

    t0 = time.perf_counter()
    store = store if isinstance(store, RunStore) else RunStore(store)
    protocol = get_protocol(protocol).name
    if str(dataset).strip().lower() == FILE_DATASET:
        _no_heads_for_a_file(heads, head_options, method_options)
        return file_table(dataset_options, bits, quantizers, store=store, seed=seed, protocol=protocol,
                          protocol_k=protocol_k, spread_bits=spread_bits, should_stop=should_stop,
                          progress=None if progress is None else (lambda stage, d, n: progress("", stage, d, n)))
    similarity = _class_similarity(dataset, seed, dataset_options)
    names, left_out = _heads(heads, has_hierarchy=similarity is not None)
    per_method = {get_method(m).name: dict(o) for m, o in dict(method_options or {}).items()}
    unused = sorted(set(per_method) - set(names))
    if unused:
        raise InvalidInputError(f"options given for head(s) not in the table: {', '.join(unused)}",
                                f"heads in this table: {', '.join(names)}")
    bits_t = check_bits(TABLE_BITS if bits is None else bits, head=True)
    qnames = tuple(dict.fromkeys(str(q).strip().lower() for q in quantizers))
    cells: list[Evaluation] = []
    spread: list[Evaluation] = []
    diagnostics: list[HeadDiagnostics] = []
    summary = ""
    warm_up_metrics()
    for head in names:
        def relay(stage, done, total, head=head):
            if progress is not None:
                progress(head, stage, done, total)

        opts = {**dict(head_options or {}), **dict(per_method.get(head, {}))}
        res = prepare(dataset, backbone, head, bits_t, store=store, seed=seed, dataset_options=dataset_options,
                      head_options=opts, quantizers=qnames, progress=relay, should_stop=should_stop)
        summary = res.summary
        new, diags, rows = score_prepared(res, qnames, store, protocol=protocol, protocol_k=protocol_k,
                                          similarity=similarity, spread_bits=spread_bits)
        cells += new
        diagnostics += diags
        spread += rows
    baselines = tuple(h for h in names if not get_method(h).trainable)
    return ResultsTable(dataset=dataset, backbone=backbone, heads=names, bits=bits_t, quantizers=qnames,
                        seed=int(seed), cells=tuple(cells), seconds=time.perf_counter() - t0, summary=summary,
                        head_options=dict(head_options or {}), diagnostics=tuple(diagnostics),
                        method_options=per_method, left_out=left_out, protocol=protocol, baselines=baselines,
                        spread=tuple(spread), multilabel="(multi-label)" in summary)


def _no_heads_for_a_file(heads, head_options, method_options) -> None:
    """An embeddings file's table trains nothing: head methods or head options given for one are refused."""
    names = [heads] if isinstance(heads, str) else list(heads or ())
    named = [str(h).strip().lower() for h in names if str(h).strip().lower() != "all"]
    if named or head_options or method_options:
        what = (f"head method(s) {', '.join(named)}" if named else "head options")
        raise InvalidInputError(f"an embeddings file has no hashing head to train, so {what} cannot apply: its z "
                                "arrays are the continuous embeddings, quantized as they are",
                                "drop --heads, --epochs and --head-option; the table has one row per code length "
                                "in the file")


def _file_has_split(path) -> bool:
    """Whether the embeddings file stores its own split (else :meth:`Embeddings.load` drew a seeded one). Reads
    only the zip directory of the file the user named."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return "split.npy" in zf.namelist() or "split" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def file_table(dataset_options: Mapping | None, bits: Sequence[int] | None = None,
               quantizers: Sequence[str] = ("sign", "itq", "hq", "random", "rr"), *,
               store: RunStore | str | Path | None = None, seed: int = 0, protocol: str = "hashviz",
               protocol_k=None, spread_bits: int | None = TARGET_BITS,
               progress: Callable[[str, int, int], object] | None = None,
               should_stop: Callable[[], bool] | None = None) -> ResultsTable:
    """The results table of an embeddings file (``dataset_options={"path": FILE}``): no backbone and no head —
    :func:`hashviz.pipeline.prepare` stores the file's embeddings (one run per code length in the file), fits the
    quantizers on its train split, and each run × quantizer is scored like any cell (one :class:`Evaluation`,
    ``head`` empty). ``bits``: a subset of the file's code lengths (default: all). ``spread_bits``: the length
    scored under every protocol when the file has it, else the file's first length (None: skip)."""
    from hashviz.pipeline import prepare
    from hashviz.retrieval.protocols import get_protocol

    t0 = time.perf_counter()
    store = store if isinstance(store, RunStore) else RunStore(store)
    protocol = get_protocol(protocol).name
    dopts = dict(dataset_options or {})
    qnames = tuple(dict.fromkeys(str(q).strip().lower() for q in quantizers))
    if not dopts.get("path"):
        raise InvalidInputError("the embeddings table needs the file: dataset_options={'path': FILE}",
                                "python -m hashviz table --dataset embeddings --path FILE.npz")
    similarity = _class_similarity(FILE_DATASET, seed, dopts)
    res = prepare(FILE_DATASET, None, None, None, store=store, seed=seed, dataset_options=dopts,
                  quantizers=qnames, progress=progress, should_stop=should_stop)
    available = tuple(res.bits)
    if bits is None:
        chosen = available
    else:
        from hashviz.pipeline import check_bits

        chosen = check_bits(bits, head=False)
        missing = [b for b in chosen if b not in available]
        if missing:
            have = ", ".join(map(str, available))
            raise InvalidInputError(f"the embeddings file has codes of {have} bits; {', '.join(map(str, missing))} "
                                    f"{'is' if len(missing) == 1 else 'are'} not among them",
                                    f"leave out --bits (every length in the file) or choose from: {have}")
    from dataclasses import replace

    from hashviz.embeddings import Embeddings

    res = replace(res, runs=tuple(r for b in chosen for r in res.runs if r.n_bits == b))
    first = Embeddings.load(res.runs[0].embeddings, max_bytes=None)
    parts = {p: int(first.mask(p).sum()) for p in ("query", "database", "train")}
    described = (f"{first.n:,} rows, {len(first.class_names)} classes "
                 f"({'multi-label' if first.multilabel else 'single-label'}); {parts['query']:,} query, "
                 f"{parts['database']:,} database, {parts['train']:,} train")
    warm_up_metrics()
    at = None
    if spread_bits is not None and chosen:
        at = spread_bits if spread_bits in chosen else chosen[0]
    cells, _, spread = score_prepared(res, qnames, store, protocol=protocol, protocol_k=protocol_k,
                                      similarity=similarity, spread_bits=at)
    return ResultsTable(dataset=FILE_DATASET, backbone="", heads=(), bits=tuple(chosen), quantizers=qnames,
                        seed=int(seed), cells=tuple(cells), seconds=time.perf_counter() - t0, summary=described,
                        protocol=protocol, spread=tuple(spread), source_file=Path(str(dopts["path"])).name,
                        split_from_file=_file_has_split(dopts["path"]), multilabel=first.multilabel)


def score_prepared(res, quantizers: Sequence[str], store: RunStore, *, protocol: str = "hashviz", protocol_k=None,
                   similarity=None, spread_bits: int | None = None, top_k: int | None = None):
    """Score the stored quantizers of a :class:`~hashviz.pipeline.PrepareResult`: one :class:`Evaluation` per
    bit length × quantizer (with the run's context: dataset, backbone, head, head options, seed, the head's
    training time and the quantizer's stored fit time), the head diagnostics, and — at ``spread_bits`` — the
    sign and HQ codes under every protocol. Shared by ``table`` and ``penalty``."""
    from dataclasses import replace

    from hashviz.embeddings import Embeddings
    from hashviz.evaluate import evaluate, evaluate_protocols
    from hashviz.pipeline import HEAD_TRAIN_KEYS, TOP_K, load_quantizer

    top_k = TOP_K if top_k is None else top_k
    cells, diags, spread = [], [], []
    head = res.head or ""
    loss_opts = {k: v for k, v in dict(res.config.get("head_options", {})).items() if k not in HEAD_TRAIN_KEYS}
    for run in res.runs:
        emb = Embeddings.load(run.embeddings, max_bytes=None)
        diag = head_diagnostics(head, run, store, emb=emb)
        head_s = diag.train_seconds if diag is not None else math.nan
        if diag is not None:
            diags.append(diag)
        context = {"dataset": res.dataset, "backbone": str(res.backbone or ""), "head": head,
                   "head_options": loss_opts, "seed": int(res.seed), "head_train_seconds": head_s}
        for q in quantizers:
            stored = run.evaluations.get(q)
            fitted = load_quantizer(run.quantizers[q], store) if q in run.quantizers else None
            if not stored or fitted is None:
                raise InvalidInputError(f"no stored quantizer for {head} {run.n_bits} bits {q}",
                                        "delete that run's folder under runs/prepared and run the command again")
            fit_s = float(stored.get("fit_seconds", math.nan))
            ev = evaluate(emb, q, fitted=fitted, fit_seconds=fit_s, options=stored.get("options", {}),
                          top_k=top_k, protocol=protocol, protocol_k=protocol_k, similarity=similarity)
            cells.append(replace(ev, **context))
            if spread_bits is not None and run.n_bits == spread_bits and q in ("sign", "hq"):
                # each protocol at its own depth (``protocol_k`` is the chosen protocol's override only)
                spread += [replace(e, **context) for e in evaluate_protocols(
                    emb, q, fitted=fitted, fit_seconds=fit_s, top_k=top_k)]
    return cells, diags, spread


def _class_similarity(dataset: str, seed: int, dataset_options: Mapping | None):
    """The (c, c) semantic class similarity of the dataset's label hierarchy, or None when it has none."""
    from hashviz.data import get_dataset
    from hashviz.data.hierarchy import dataset_similarity

    return dataset_similarity(get_dataset(dataset, seed=seed, **dict(dataset_options or {})))


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
            w.writerow(csv_row(c))
    return path


def csv_row(c: Evaluation) -> dict:
    """One CSV row of :data:`CSV_COLUMNS` (floats with 6 decimals, head options as JSON)."""
    import json

    d = c.to_dict()
    row = {k: d[k] for k in CSV_COLUMNS}
    row["head_options"] = json.dumps(dict(c.head_options), sort_keys=True)
    return {k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()}


def _f(x: float, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _s(x: float) -> str:
    return "—" if math.isnan(x) else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def _relevance(table: ResultsTable) -> str:
    return "shares at least one label with the query" if table.multilabel else "same class"


def _protocol_rules(table: ResultsTable) -> str:
    from hashviz.retrieval.protocols import get_protocol

    return (get_protocol(table.protocol).describe() if table.protocol != "hashviz" else "expected ties (the "
            "average over random orders of equal Hamming distances), queries without a relevant item left out")


def _scores_text(c0: Evaluation, label: str, rules: str) -> str:
    return (f"**{label}** — {rules}; mAP@{c0.top_k} and P@{c0.top_k} with the same tie order; "
            f"P@r≤{c0.radius}: precision of the database items within Hamming radius {c0.radius} (0 for a query "
            "with none); QE: quantization error, mean (|u| − 1)² over the rotated database embeddings rescaled to "
            "norm √bits.")


def _preamble(table: ResultsTable, command: str) -> list[str]:
    from hashviz import __version__

    lines = ["# Results", ""]
    if command:
        lines += ["Produced by", "", "```", command, "```", ""]
    stored = ("heads and quantizers" if not table.from_file else "quantizers")
    lines += [
        f"hashviz {__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; seed {table.seed}; total {table.seconds:.0f} s for this run "
        f"({stored} read back from the run store keep the {'training and ' if not table.from_file else ''}fit "
        "times of the run that computed them; scoring is this run's).", ""]
    return lines


def markdown(table: ResultsTable, *, command: str = "") -> str:
    """The results as a Markdown page: protocol, headline, mAP per bit length, training-free baselines, checks,
    heads, hierarchical scores, the same codes under every protocol, the full table. Every mAP header names its
    protocol. An embeddings file's table (:func:`file_table`) has one row per code length and says that nothing
    was trained."""
    if table.from_file:
        return file_markdown(table, command=command)
    qlab = [quantizer_label(q) for q in table.quantizers]
    c0 = table.cells[0] if table.cells else None
    label = table.map_label
    lines = _preamble(table, command)
    if c0 is not None:
        lines += [
            f"**Protocol.** {table.summary or table.dataset}. Backbone `{table.backbone}`; one hashing head per "
            f"method and bit length, trained on the train split's cached backbone features (the training-free "
            f"`pca` and `lsh` heads are fitted or drawn there, no training); quantizers fitted on the train split; "
            f"{c0.n_query:,} queries against {c0.n_database:,} database items; relevant = {_relevance(table)}. "
            + _scores_text(c0, label, _protocol_rules(table)) + " Time: quantizer fit + "
            "scoring per cell (the head's training time is its own column). Protocols: docs/metrics.md.", ""]
    if table.left_out:
        lines += ["**Left out:** " + "; ".join(f"{h} — {why}" for h, why in table.left_out) + ".", ""]
    if table.head_options or table.method_options:
        given = [f"every head: {dict(table.head_options)}"] if table.head_options else []
        given += [f"{m}: {o}" for m, o in table.method_options.items()]
        lines += ["**Options changed from the defaults** — " + "; ".join(given) + ".", ""]
    lines += _headline(table)
    ties = c0.ties if c0 else "expected"
    lines += [f"## {label} — ties {ties}", ""]
    for n in table.bits:
        lines += [f"**{n} bits**", "", "| head | " + " | ".join(qlab) + " | HQ − sign |",
                  "|---|" + "---:|" * (len(qlab) + 1)]
        for h in table.heads:
            vals = [table.cell(h, n, q).map for q in table.quantizers]
            best = max(vals)
            row = [f"**{_f(v)}**" if v == best else _f(v) for v in vals]
            diff = (_f(table.cell(h, n, "hq").map - table.cell(h, n, "sign").map, 4)
                    if {"hq", "sign"} <= set(table.quantizers) else "—")
            name = f"{h} (training-free)" if h in table.baselines else h
            lines.append(f"| {name} | " + " | ".join(row) + f" | {diff} |")
        lines.append("")
    lines += _baselines_section(table)
    checks = table.checks()
    if checks:
        bad = [c for c in checks if not c["ok"]]
        lines += ["## Sanity checks", "",
                  f"{len(checks) - len(bad)} of {len(checks)} hold"
                  + (f" (the training-free heads {', '.join(table.baselines)} are not held to the "
                     f"{MAP_TARGET} target)." if table.baselines and TARGET_BITS in table.bits else ".")]
        if bad:
            lines += ["", "| check | head | bits | value |", "|---|---|---:|---:|"]
            lines += [f"| {c['check']} | {c['head']} | {c['n_bits']} | {_f(c['value'])} {c['detail']} |"
                      for c in bad]
        lines.append("")
    if table.diagnostics:
        lines += ["## Heads", "",
                  "Training time and final loss of each head (training-free heads: the time to fit PCA or draw "
                  "the projection, no loss); for centre-based heads the **codebook accuracy** "
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
                  "| head | " + " | ".join(f"{n} bits {quantizer_label(q)}" for n in table.bits
                                          for q in ("sign", "hq") if q in table.quantizers) + " |",
                  "|---|" + "---:|" * (len(table.bits) * len({"sign", "hq"} & set(table.quantizers)))]
        for h in table.heads:
            vals = [_f(table.cell(h, n, q).hierarchical_at_k) for n in table.bits for q in ("sign", "hq")
                    if q in table.quantizers]
            lines.append(f"| {h} | " + " | ".join(vals) + " |")
        lines.append("")
    lines += spread_markdown(table.spread)
    hcol = f" hier.@{k} |" if hier else ""
    short = label.split(" (")[0]
    lines += ["## All scores", "",
              f"Protocol {table.protocol}; mAP columns as in the header.", "",
              f"| head | bits | quantizer | {short} | mAP@{k} | P@r≤{c0.radius if c0 else 2} "
              f"| QE |{hcol} cell time (s) | head training (s) |",
              "|---|---:|---|---:|---:|---:|---:|" + ("---:|" if hier else "") + "---:|---:|"]
    for c in table.cells:
        hv = f" {_f(c.hierarchical_at_k)} |" if hier else ""
        lines.append(f"| {c.head} | {c.n_bits} | {quantizer_label(c.quantizer)} | "
                     f"{_f(c.map)} | {_f(c.map_at_k)} | {_f(c.p_within_radius)} | {_f(c.quantization_error)} "
                     f"|{hv} {_s(c.cell_seconds)} | {_s(c.head_train_seconds)} |")
    lines.append("")
    return "\n".join(lines)


def file_markdown(table: ResultsTable, *, command: str = "") -> str:
    """The Markdown page of an embeddings file's table: what the file held and what was done with it (nothing
    trained), a headline computed from the cells, one row per code length × quantizer, checks, hierarchical
    scores when the file's classes have a hierarchy, the same codes under every protocol, every score."""
    qs = table.quantizers
    qlab = [quantizer_label(q) for q in qs]
    c0 = table.cells[0] if table.cells else None
    label = table.map_label
    lines = _preamble(table, command)
    lengths = ", ".join(map(str, table.bits))
    split = ("its own split" if table.split_from_file else
             f"a seeded stratified split (the file has none; seed {table.seed})")
    if c0 is not None:
        lines += [
            f"**Protocol.** Embeddings file `{table.source_file}` ({table.summary or 'embeddings'}), with "
            f"{split}. No backbone and no hashing head: the file's z arrays are the continuous embeddings and "
            f"are quantized as they are (nothing was trained before the quantizers); one row per code length in "
            f"the file ({lengths} bits). Quantizers fitted on the train split; {c0.n_query:,} queries against "
            f"{c0.n_database:,} database items; relevant = {_relevance(table)}. "
            + _scores_text(c0, label, _protocol_rules(table)) + " Time: quantizer fit + scoring per cell. "
            "Protocols: docs/metrics.md.", ""]
    lines += ["## Headline", ""]
    if {"hq", "sign"} <= set(qs) and table.bits:
        d = [(table.cell("", n, "hq").map - table.cell("", n, "sign").map, n) for n in table.bits]
        top = max(d)
        lines.append(f"- HQ ≥ sign at {sum(x >= 0 for x, _ in d)} of {len(d)} code lengths; mean gain "
                     f"{sum(x for x, _ in d) / len(d):+.4f} {label}, largest {top[0]:+.4f} ({top[1]} bits).")
    if {"hq", "itq"} <= set(qs) and table.bits:
        d = [table.cell("", n, "hq").map - table.cell("", n, "itq").map for n in table.bits]
        lines.append(f"- HQ − ITQ: mean {sum(d) / len(d):+.4f}, range {min(d):+.4f} … {max(d):+.4f}.")
    for n in table.bits:
        b = table.best("", n)
        lines.append(f"- {n} bits: best {quantizer_label(b.quantizer)} {b.map:.4f}.")
    if table.spread:
        by: dict[str, list[float]] = {}
        for r in table.spread:
            by.setdefault(r.quantizer, []).append(r.map)
        sp = [max(v) - min(v) for v in by.values()]
        lines.append(f"- Same codes, every protocol ({table.spread[0].n_bits} bits): the protocols' mAPs differ by "
                     f"{sum(sp) / len(sp):.4f} on average, up to {max(sp):.4f}.")
    computed = sum(c.cell_seconds for c in table.cells if not math.isnan(c.cell_seconds))
    lines += [f"- Compute recorded in the cells: {computed:.0f} s of quantizer fitting and scoring (no head "
              "training).", ""]
    ties = c0.ties if c0 else "expected"
    diff_col = {"hq", "sign"} <= set(qs)
    lines += [f"## {label} — ties {ties}", "",
              "| bits | " + " | ".join(qlab) + (" | HQ − sign |" if diff_col else " |"),
              "|---:|" + "---:|" * (len(qlab) + diff_col)]
    for n in table.bits:
        vals = [table.cell("", n, q).map for q in qs]
        best = max(vals)
        row = [f"**{_f(v)}**" if v == best else _f(v) for v in vals]
        diff = f" {_f(table.cell('', n, 'hq').map - table.cell('', n, 'sign').map)} |" if diff_col else ""
        lines.append(f"| {n} | " + " | ".join(row) + " |" + diff)
    lines.append("")
    checks = table.checks()
    if checks:
        bad = [c for c in checks if not c["ok"]]
        lines += ["## Sanity checks", "", f"{len(checks) - len(bad)} of {len(checks)} hold (HQ ≥ sign per code "
                  f"length; no target mAP: nothing here was trained by hashviz)."]
        if bad:
            lines += ["", "| check | bits | value |", "|---|---:|---:|"]
            lines += [f"| {c['check']} | {c['n_bits']} | {_f(c['value'])} |" for c in bad]
        lines.append("")
    k = c0.top_k if c0 else "k"
    hier = any(not math.isnan(c.hierarchical_at_k) for c in table.cells)
    if hier:
        lines += [f"## Hierarchical retrieval: mean semantic similarity of the top {k}", "",
                  "| bits | " + " | ".join(qlab) + " |", "|---:|" + "---:|" * len(qlab)]
        lines += [f"| {n} | " + " | ".join(_f(table.cell("", n, q).hierarchical_at_k) for q in qs) + " |"
                  for n in table.bits]
        lines.append("")
    lines += spread_markdown(table.spread)
    short = label.split(" (")[0]
    hcol = f" hier.@{k} |" if hier else ""
    lines += ["## All scores", "", f"Protocol {table.protocol}; mAP columns as in the header.", "",
              f"| bits | quantizer | {short} | mAP@{k} | P@r≤{c0.radius if c0 else 2} | QE |{hcol} cell time (s) |",
              "|---:|---|---:|---:|---:|---:|" + ("---:|" if hier else "") + "---:|"]
    for c in table.cells:
        hv = f" {_f(c.hierarchical_at_k)} |" if hier else ""
        lines.append(f"| {c.n_bits} | {quantizer_label(c.quantizer)} | {_f(c.map)} | {_f(c.map_at_k)} | "
                     f"{_f(c.p_within_radius)} | {_f(c.quantization_error)} |{hv} {_s(c.cell_seconds)} |")
    lines.append("")
    return "\n".join(lines)


def spread_markdown(rows: Sequence[Evaluation]) -> list[str]:
    """"Same codes, every protocol": one line per (head, bits, quantizer), one column per protocol, and the
    spread (largest − smallest) — how much of a published gap the evaluator alone can make."""
    if not rows:
        return []
    from hashviz.retrieval.protocols import get_protocol

    protos = list(dict.fromkeys(r.protocol for r in rows))
    keys = list(dict.fromkeys((r.head, r.n_bits, r.quantizer) for r in rows))
    by = {(r.head, r.n_bits, r.quantizer, r.protocol): r for r in rows}
    first = rows[0]
    with_head = any(r.head for r in rows)
    heads = [f"{p}: {by[(*keys[0], p)].map_label.split(' (')[0]}" for p in protos]
    out = [f"## Same codes, every protocol ({first.n_bits} bits)", "",
           "The codes of each cell scored by each paper's evaluator (docs/metrics.md): "
           + "; ".join(get_protocol(p).describe() for p in protos) + ". Depths here: " + ", ".join(heads) + ".", "",
           ("| head " if with_head else "") + "| quantizer | " + " | ".join(protos) + " | spread |",
           ("|---" if with_head else "") + "|---|" + "---:|" * (len(protos) + 1)]
    spreads = []
    for key in keys:
        vals = [by[(*key, p)].map for p in protos]
        spreads.append(max(vals) - min(vals))
        out.append((f"| {key[0]} " if with_head else "") + f"| {quantizer_label(key[2])} | "
                   + " | ".join(_f(v) for v in vals) + f" | {_f(spreads[-1])} |")
    out += ["", f"Spread across protocols: mean {sum(spreads) / len(spreads):.4f}, largest {max(spreads):.4f} mAP.", ""]
    return out


def _baselines_section(table: ResultsTable) -> list[str]:
    """Training-free heads against the supervised ones, per bit length (computed from the cells)."""
    base = [h for h in table.heads if h in table.baselines]
    sup = [h for h in table.heads if h not in table.baselines]
    if not base:
        return []
    qs = [q for q in ("sign", "rr", "itq", "hq") if q in table.quantizers]
    out = ["## Training-free baselines", "",
           "`pca`: PCA of the backbone features fitted on the train split (not whitened); `lsh`: a seeded Gaussian "
           "projection of the centred features; quantizers as everywhere (`rr`: a seeded Haar-random rotation, "
           f"the PCA-RR baseline of Gong & Lazebnik). {table.map_label}.", "",
           "| head | bits | " + " | ".join(quantizer_label(q) for q in qs)
           + " | best supervised head (its best quantizer) |", "|---|---:|" + "---:|" * (len(qs) + 1)]
    for h in base:
        for n in table.bits:
            vals = [_f(table.cell(h, n, q).map) for q in qs]
            if sup:
                b = max((table.best(s, n) for s in sup), key=lambda c: c.map)
                best = f"{b.head} {_f(b.map)} ({quantizer_label(b.quantizer)})"
            else:
                best = "—"
            out.append(f"| {h} | {n} | " + " | ".join(vals) + f" | {best} |")
    out.append("")
    return out


def _headline(table: ResultsTable) -> list[str]:
    """Observations computed from the cells (so they stay true when the table is produced again)."""
    out = ["## Headline", ""]
    qs = set(table.quantizers)
    label = table.map_label
    heads = [h for h in table.heads if h not in table.baselines]
    pairs = [(h, n) for h in heads for n in table.bits]
    if pairs and {"hq", "sign"} <= qs:
        d = [(table.cell(h, n, "hq").map - table.cell(h, n, "sign").map, h, n) for h, n in pairs]
        top = max(d)
        out.append(f"- HQ ≥ sign in {sum(x >= 0 for x, _, _ in d)} of {len(d)} supervised head × bits cells; mean "
                   f"gain {sum(x for x, _, _ in d) / len(d):+.4f} {label}, largest {top[0]:+.4f} ({top[1]}, "
                   f"{top[2]} bits).")
    if pairs and {"hq", "itq"} <= qs:
        d = [table.cell(h, n, "hq").map - table.cell(h, n, "itq").map for h, n in pairs]
        out.append(f"- HQ − ITQ: mean {sum(d) / len(d):+.4f}, range {min(d):+.4f} … {max(d):+.4f}; HQ higher in "
                   f"{sum(x > 0 for x in d)} of {len(d)} cells.")
    if pairs and "random" in qs and "hq" in qs:
        d = [table.cell(h, n, "hq").map - table.cell(h, n, "random").map for h, n in pairs]
        out.append(f"- HQ − random search: mean {sum(d) / len(d):+.4f}; HQ higher in {sum(x > 0 for x in d)} of "
                   f"{len(d)} cells.")
    for n in table.bits:
        best = sorted(((table.best(h, n).map, h, table.best(h, n).quantizer) for h in table.heads), reverse=True)
        if best:
            out.append(f"- {n} bits: best {best[0][1]} {best[0][0]:.4f} "
                       f"({quantizer_label(best[0][2])}), lowest best {best[-1][1]} "
                       f"{best[-1][0]:.4f}.")
    for h in (h for h in table.heads if h in table.baselines):
        parts = []
        for n in table.bits:
            vals = ", ".join(f"{quantizer_label(q)} {table.cell(h, n, q).map:.4f}"
                             for q in ("sign", "rr", "itq", "hq") if q in qs)
            parts.append(f"{n} bits {vals}")
        out.append(f"- Training-free `{h}`: " + "; ".join(parts) + ".")
    if "hq" in qs and any(not math.isnan(c.hierarchical_at_k) for c in table.cells):
        for n in table.bits:
            r = sorted(((table.cell(h, n, "hq").hierarchical_at_k, h) for h in table.heads), reverse=True)
            out.append(f"- Hierarchical score (top {table.cells[0].top_k}, HQ), {n} bits: "
                       + ", ".join(f"{h} {v:.4f}" for v, h in r) + ".")
    if table.spread:
        by: dict[tuple, list[float]] = {}
        for r in table.spread:
            by.setdefault((r.head, r.quantizer), []).append(r.map)
        sp = [max(v) - min(v) for v in by.values()]
        out.append(f"- Same codes, every protocol ({table.spread[0].n_bits} bits): the protocols' mAPs differ by "
                   f"{sum(sp) / len(sp):.4f} on average, up to {max(sp):.4f}.")
    computed = sum(c.cell_seconds for c in table.cells if not math.isnan(c.cell_seconds))
    heads_s = {(c.head, c.n_bits): c.head_train_seconds for c in table.cells if not math.isnan(c.head_train_seconds)}
    out += [f"- Compute recorded in the cells: {sum(heads_s.values()):.0f} s of head training, {computed:.0f} s of "
            "quantizer fitting and scoring.", ""]
    return out


# ---- sections other commands own -------------------------------------------------------------------------------
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def owned_sections(text: str) -> dict[str, str]:
    """``{name: block}`` of the ``<!-- section:NAME -->`` … ``<!-- /section:NAME -->`` blocks in a page (the
    markers included), in order."""
    import re

    out = {}
    for m in re.finditer(r"<!-- section:([\w.-]+) -->.*?<!-- /section:\1 -->", text, flags=re.S):
        out[m.group(1)] = m.group(0)
    return out


def write_section(path: str | Path, name: str, body: str) -> Path:
    """Put ``body`` between the markers of section ``name`` in the Markdown file ``path``: replaced where the
    section exists, appended otherwise (the file is created if missing). ``table`` keeps these sections when it
    rewrites the page, so ``penalty`` results survive a new table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    old = owned_sections(text).get(name)
    text = text.replace(old, block) if old is not None else (text.rstrip() + "\n\n" + block + "\n").lstrip()
    write_text_atomic(path, text)
    return path


def write_markdown(table: ResultsTable, path: str | Path, *, command: str = "", notes: str = "") -> Path:
    """Write :func:`markdown` to ``path``, keeping the sections other commands own (``write_section``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = owned_sections(path.read_text(encoding="utf-8")) if path.is_file() else {}
    text = markdown(table, command=command)
    if notes:
        text += "\n" + notes.strip() + "\n"
    for block in kept.values():
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(path, text)
    return path
