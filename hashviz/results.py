"""The results table: every head method × bit length × quantizer on one dataset — its cells, checks and head
diagnostics (the Markdown and CSV are written by :mod:`hashviz.results_render`).

``python -m hashviz table --dataset mnist5k --backbone mnist_cnn --heads all --bits 16 32 64
--quantizers sign itq hq random rr`` calls :func:`results_table` then
:func:`hashviz.results_render.write_markdown` / :func:`~hashviz.results_render.write_csv`.
For an embeddings file (``--dataset embeddings --path FILE``) nothing is trained: the table has one row per code
length in the file (the file's ``z`` arrays), its quantizers fitted and scored the same way.
Heads and quantizers come from :func:`hashviz.pipeline.prepare` (one call per head method, cached in the run
store: a second run reads them back, a run stopped half-way continues where it stopped); every cell is then scored
by :func:`hashviz.evaluate.evaluate` — the CLI's and the app's function — under the chosen protocol, one
:class:`~hashviz.evaluate.Evaluation` per cell. Fit and head-training times are those of the run that computed
them; the scoring time is this run's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hashviz.errors import InvalidInputError
from hashviz.evaluate import Evaluation
from hashviz.store import RunStore

MAP_TARGET = 0.85  # sanity target: a supervised head's best quantizer at the target bit length
TARGET_BITS = 32
TABLE_BITS: tuple[int, ...] = (16, 32, 64)  # the default bit lengths of a table on images
FILE_DATASET = "embeddings"  # the dataset source that reads an embeddings file (no backbone, no head)


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
    bit_lengths: tuple[int, ...]
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
        if TARGET_BITS in self.bit_lengths:
            for h in self.heads:
                if h in self.baselines:
                    continue
                b = self.best(h, TARGET_BITS)
                out.append({"check": f"best {label} at {TARGET_BITS} bits ≥ {MAP_TARGET}", "head": h,
                            "n_bits": TARGET_BITS, "value": b.map, "detail": b.quantizer,
                            "ok": bool(b.map >= MAP_TARGET)})
        if "hq" in self.quantizers and "sign" in self.quantizers:
            for h in self.row_heads:
                for n in self.bit_lengths:
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
                  bit_lengths: Sequence[int] | None = None,
                  quantizers: Sequence[str] = ("sign", "itq", "hq", "random", "rr"),
                  *, store: RunStore | str | Path | None = None, seed: int = 0,
                  dataset_options: Mapping | None = None, head_options: Mapping | None = None,
                  method_options: Mapping[str, Mapping] | None = None, protocol: str = "hashviz",
                  protocol_k=None, spread_bits: int | None = TARGET_BITS,
                  progress: Callable[[str, str, int, int], object] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ResultsTable:
    """Prepare every head (cached per config key) and score one :class:`Evaluation` per head × bits × quantizer.

    ``bit_lengths``: default :data:`TABLE_BITS`. ``head_options`` apply to every head, ``method_options[method]`` to one
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
    from hashviz.pipeline import check_bit_lengths, prepare
    from hashviz.retrieval.protocols import get_protocol

    t0 = time.perf_counter()
    store = store if isinstance(store, RunStore) else RunStore(store)
    protocol = get_protocol(protocol).name
    if str(dataset).strip().lower() == FILE_DATASET:
        _no_heads_for_a_file(heads, head_options, method_options)
        return file_table(dataset_options, bit_lengths, quantizers, store=store, seed=seed, protocol=protocol,
                          protocol_k=protocol_k, spread_bits=spread_bits, should_stop=should_stop,
                          progress=None if progress is None else (lambda stage, d, n: progress("", stage, d, n)))
    similarity = _class_similarity(dataset, seed, dataset_options)
    names, left_out = _heads(heads, has_hierarchy=similarity is not None)
    per_method = {get_method(m).name: dict(o) for m, o in dict(method_options or {}).items()}
    unused = sorted(set(per_method) - set(names))
    if unused:
        raise InvalidInputError(f"options given for head(s) not in the table: {', '.join(unused)}",
                                f"heads in this table: {', '.join(names)}")
    bits_t = check_bit_lengths(TABLE_BITS if bit_lengths is None else bit_lengths, head=True)
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
    return ResultsTable(dataset=dataset, backbone=backbone, heads=names, bit_lengths=bits_t, quantizers=qnames,
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


def file_table(dataset_options: Mapping | None, bit_lengths: Sequence[int] | None = None,
               quantizers: Sequence[str] = ("sign", "itq", "hq", "random", "rr"), *,
               store: RunStore | str | Path | None = None, seed: int = 0, protocol: str = "hashviz",
               protocol_k=None, spread_bits: int | None = TARGET_BITS,
               progress: Callable[[str, int, int], object] | None = None,
               should_stop: Callable[[], bool] | None = None) -> ResultsTable:
    """The results table of an embeddings file (``dataset_options={"path": FILE}``): no backbone and no head —
    :func:`hashviz.pipeline.prepare` stores the file's embeddings (one run per code length in the file), fits the
    quantizers on its train split, and each run × quantizer is scored like any cell (one :class:`Evaluation`,
    ``head`` empty). ``bit_lengths``: a subset of the file's code lengths (default: all). ``spread_bits``: the length
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
    available = tuple(res.bit_lengths)
    if bit_lengths is None:
        chosen = available
    else:
        from hashviz.pipeline import check_bit_lengths

        chosen = check_bit_lengths(bit_lengths, head=False)
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
    return ResultsTable(dataset=FILE_DATASET, backbone="", heads=(), bit_lengths=tuple(chosen), quantizers=qnames,
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
