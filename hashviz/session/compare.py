"""Comparison tables, curves, bit statistics and exports, UI-free. Scores are those of
:func:`hashviz.evaluate.evaluate` — the function behind ``hashviz evaluate``: the numbers ``prepare`` stored from
it, or the same metric functions on the same codes counted once (:func:`score`) — so the app and the CLI print the
same numbers. Quantizers arrive as :class:`~hashviz.session.runs.FittedQuantizer` records keyed by id (a
registry name such as ``"hq"``, or ``"live:…"`` for a rotation trained on the Rotation page)."""

from __future__ import annotations

import io
import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hashviz.embeddings import Embeddings

# the protocol fields a stored evaluation must match to stand for a score computed now
_PROTOCOL_FIELDS = ("top_k", "ties", "radius")
_SCORE_FIELDS = ("map", "map_at_k", "p_at_k", "p_within_radius", "quantization_error")
# long-form column labels of the tie spread (numeric), and the quantizer × bits view of their difference
TIE_SPREAD = "mAP@all tie spread (optimistic − pessimistic)"
PESSIMISTIC, OPTIMISTIC = "mAP@all pessimistic (relevant last in ties)", "mAP@all optimistic (relevant first in ties)"


@dataclass(frozen=True)
class CodeStats:
    """What Compare needs of one quantizer's codes that no protocol choice changes: the packed query and
    database codes (encoded once), the quantization error of the database, and — from one Hamming count of query
    vs database — the optimistic / pessimistic orders of mAP@all (the tie spread) and precision–recall by radius;
    plus the balance and correlation of the database bits."""

    query_codes: np.ndarray
    database_codes: np.ndarray
    quantization_error: float
    map_optimistic: float
    map_pessimistic: float
    precision: np.ndarray
    recall: np.ndarray
    balance: np.ndarray
    correlation: np.ndarray


def code_stats(emb: Embeddings, fitted) -> CodeStats:
    """:class:`CodeStats` of the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted``. The numbers are those
    of :func:`~hashviz.retrieval.metrics.mean_average_precision`, :func:`~hashviz.retrieval.metrics.
    precision_recall_by_radius` and :func:`~hashviz.retrieval.metrics.quantization_error` on these codes (one
    counting pass shared by the bounds and the curve)."""
    from hashviz.codes import unpack_bits
    from hashviz.retrieval import metrics as M

    q, db = emb.part("query"), emb.part("database")
    quantizer = fitted.quantizer
    qc, dt = quantizer.encode(q.z), quantizer.transform(db.z)
    dc = quantizer.encode(db.z)
    problem = M._prepare(qc, dc, q.labels, db.labels)  # counts once for the bounds and the curve
    hi = M._mean_left_out(M._ap_and_relk(problem, problem.ndb, "optimistic", 0)[0])[0]
    lo = M._mean_left_out(M._ap_and_relk(problem, problem.ndb, "pessimistic", 0)[0])[0]
    precision, recall = M._radius_curves(problem.counts(), M._n_bits(problem, emb.dim), "macro")
    bits = unpack_bits(dc, emb.dim)
    return CodeStats(query_codes=qc, database_codes=dc, quantization_error=float(M.quantization_error(dt)),
                     map_optimistic=float(hi), map_pessimistic=float(lo), precision=precision, recall=recall,
                     balance=M.bit_balance(bits), correlation=M.bit_correlation(bits))


def score(emb: Embeddings, fitted, *, top_k: int = 1000, ties: str = "expected", radius: int = 2,
          similarity=None, stats: CodeStats | None = None, stored: Mapping | None = None) -> dict:
    """One table row for the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted`` under a protocol (k, tie
    policy, radius): the fields of :func:`hashviz.evaluate.evaluate`'s record (the CLI's numbers) plus the
    optimistic/pessimistic tie bounds of mAP@all and, when the run's dataset has a label hierarchy
    (``similarity``), the semantic similarity of the top k. ``quantizer`` is the id, ``label`` the display name.

    The scores are those ``evaluate`` computes — the same metric functions on the same codes — but counted once:
    ``stored``, the evaluation ``prepare`` recorded for this very quantizer, is used as it is when it was
    computed under the same protocol; otherwise :func:`~hashviz.retrieval.metrics.retrieval_report` scores the
    codes of ``stats`` (encoded once per quantizer) in one counting pass, so changing k, ties or the radius
    costs one pass per quantizer instead of an encoding and four."""
    from hashviz.retrieval.metrics import retrieval_report

    stats = code_stats(emb, fitted) if stats is None else stats
    n_db = int(emb.mask("database").sum())
    k = int(min(int(top_k), n_db))
    want = {"top_k": k, "ties": str(ties), "radius": int(radius)}
    q_labels, db_labels = emb.labels[emb.mask("query")], emb.labels[emb.mask("database")]
    if (stored and stored.get("protocol", "hashviz") == "hashviz"
            and all(stored.get(f) == want[f] for f in _PROTOCOL_FIELDS)
            and all(stored.get(f) is not None for f in _SCORE_FIELDS)):
        row = {**dict(stored), "quantizer": fitted.id}
    else:
        rep = retrieval_report(stats.query_codes, stats.database_codes, q_labels, db_labels, top_k=top_k,
                               ties=ties, radius=radius)
        row = {"quantizer": fitted.id, "n_bits": emb.dim, **rep.to_dict(),
               "quantization_error": stats.quantization_error, "n_train": int(emb.mask("train").sum())}
    row["hierarchical_at_k"] = float("nan")
    if similarity is not None:
        from hashviz.retrieval.hierarchical import mean_semantic_similarity_at_k

        row["hierarchical_at_k"] = float(mean_semantic_similarity_at_k(
            stats.query_codes, stats.database_codes, q_labels, db_labels, similarity, k,
            ties="stable" if ties == "stable" else "expected"))
    return {**row, "label": fitted.label, "map_pessimistic": stats.map_pessimistic,
            "map_optimistic": stats.map_optimistic}


def table_rows_by_label(rows: list[dict]) -> list[dict]:
    """Score rows with ``quantizer`` set to the display label (for figures that name lines)."""
    return [{**r, "quantizer": r.get("label", r["quantizer"])} for r in rows]


def _metric_columns(r: Mapping) -> dict:
    k, rad, ties = r["top_k"], r["radius"], r["ties"]
    out = {f"mAP@all (ties {ties})": r["map"], f"mAP@{k} (ties {ties})": r["map_at_k"],
           f"P@{k} (ties {ties})": r["p_at_k"], f"P@r≤{rad}": r["p_within_radius"],
           "quantization error": r["quantization_error"],
           PESSIMISTIC: r["map_pessimistic"], OPTIMISTIC: r["map_optimistic"]}
    h = r.get("hierarchical_at_k")
    if h is not None and np.isfinite(h):
        hties = "stable" if ties == "stable" else "expected"
        out[f"semantic similarity@{k} (hierarchy, ties {hties})"] = h
    return out


def table(rows: list[dict]):
    """The long form: one row per quantizer × bit length, every metric a numeric column with its protocol (tie
    policy, k, radius) in the label, the tie spread as two numeric columns (mAP@all with relevant items last /
    first inside ties). This is the CSV export."""
    import pandas as pd

    return pd.DataFrame([{"quantizer": r.get("label", r["quantizer"]), "n_bits": r["n_bits"], **_metric_columns(r)}
                         for r in rows])


def cell_metrics(rows: list[dict]) -> list[str]:
    """The metrics a quantizer × bits table can show (long-form column labels), plus the tie spread."""
    if not rows:
        return []
    return [*_metric_columns(rows[0]), TIE_SPREAD]


def grid(rows: list[dict], metric: str):
    """Quantizer × bit length: one row per quantizer (display label, in order of appearance), one column per bit
    length (``"16 bits"``…), the number ``metric`` (a label of :func:`cell_metrics`) in each cell; NaN where a
    quantizer does not exist at that length (a live fit trained at one length only)."""
    import pandas as pd

    long = table(rows)
    if metric == TIE_SPREAD:
        values = long[OPTIMISTIC] - long[PESSIMISTIC]
    else:
        values = long[metric]
    frame = pd.DataFrame({"quantizer": long["quantizer"], "n_bits": long["n_bits"], "value": values})
    order = list(dict.fromkeys(frame["quantizer"]))
    bits = sorted({int(b) for b in frame["n_bits"]})
    out = frame.pivot_table(index="quantizer", columns="n_bits", values="value", aggfunc="first")
    out = out.reindex(index=order, columns=bits)
    out.columns = grid_columns(rows)
    out.index.name = "quantizer"
    return out.reset_index()


def grid_columns(rows: list[dict]) -> list[str]:
    """The bit-length columns of :func:`grid`: ``"16 bits"``, ``"32 bits"``…"""
    return [f"{b} bits" for b in sorted({int(r["n_bits"]) for r in rows})]


def provenance(run: Mapping, params: Mapping, quantizers: Mapping[str, object]) -> dict:
    """Versions, seeds, parameters and protocol: enough to reproduce a table. ``quantizers``: id →
    FittedQuantizer; each is recorded as what it is (a live fit with its loss, learning rate, steps, batch)."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in ("hashviz", "numpy", "torch", "scikit-learn", "umap-learn", "streamlit", "plotly"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            if pkg == "hashviz":
                import hashviz

                versions[pkg] = hashviz.__version__
    qinfo = {qid: dict(f.provenance) for qid, f in quantizers.items()}
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions, "run": dict(run),
            "protocol": {"query_vs_database": True, "relevance": "share at least one label", **dict(params)},
            "quantizers": qinfo, "seeds": {"split": dict(run.get("config", {})).get("dataset_options", {}).get(
                "seed", 0), "quantizers": {n: d.get("params", {}).get("random_state") for n, d in qinfo.items()}}}


@dataclass(frozen=True)
class Export:
    """One downloadable file of a run: its name (always carrying the run key), MIME type and a function that
    builds its bytes when the user asks for it (not on every page view)."""

    label: str
    file_name: str
    mime: str
    build: Callable[[], bytes]
    help: str = ""


def exports(run: Mapping, emb: Embeddings, quantizers: Mapping[str, object], table_csv: Callable[[], str],
            params: Mapping, n_bits: int) -> list[Export]:
    """The Compare page's exports of one run: the table (CSV), codes + rotations at ``n_bits`` (.npz, an
    embeddings file that uploads again) and the provenance (JSON). File names and the provenance carry the run key,
    so a file can be traced to its run whatever its display name."""
    key = str(run["key"])

    def prov() -> dict:
        return provenance(run, {**dict(params), "n_bits": int(n_bits)}, quantizers)

    return [
        Export("Table (CSV)", f"hashviz_{key}_compare.csv", "text/csv", lambda: table_csv().encode()),
        Export(f"Codes + rotations, {n_bits} bits (.npz)", f"hashviz_{key}_{n_bits}bits.npz",
               "application/octet-stream", lambda: export_npz(emb, quantizers, {"provenance": prov()}),
               "an embeddings file: upload it on Data & model to evaluate it again"),
        Export("Provenance (JSON)", f"hashviz_{key}_{n_bits}bits_provenance.json", "application/json",
               lambda: json.dumps(prov(), indent=1, default=str).encode()),
    ]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower() or "q"


def export_npz(emb: Embeddings, quantizers: Mapping[str, object], meta: Mapping | None = None) -> bytes:
    """An embeddings file (``z``, ``labels``, ``split``, ``ids``, ``class_names``, ``meta``, and the run's
    ``thumbnails`` when it has them) plus, per quantizer id, ``codes_<id>`` (packed uint8 of every row),
    ``rotation_<id>`` and ``mean_<id>``. It loads back with :meth:`Embeddings.load` (the extra arrays are ignored
    there) and so can be uploaded again."""
    arrays = {"z": emb.z, "labels": emb.labels, "split": emb.split, "ids": emb.ids,
              "class_names": np.array(emb.class_names, dtype=str),
              "meta": np.array(json.dumps({**emb.meta, **dict(meta or {})}, sort_keys=True, default=str)),
              "quantizer_names": np.array(list(quantizers), dtype=str)}
    if emb.thumbnails is not None:
        arrays["thumbnails"] = emb.thumbnails
    for name, f in quantizers.items():
        q = f.quantizer
        s = _safe(name)
        arrays[f"codes_{s}"] = q.encode(emb.z)
        arrays[f"rotation_{s}"] = np.asarray(q.rotation_, dtype=np.float64)
        arrays[f"mean_{s}"] = np.asarray(getattr(q, "mean_", np.zeros(emb.dim)), dtype=np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
