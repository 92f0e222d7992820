"""Comparison tables, curves, bit statistics and exports, UI-free. Scores are those of
:func:`hashviz.evaluate.evaluate` — the function behind ``hashviz evaluate`` — so the app and the CLI print the
same numbers: :func:`score` calls the same scorer (:func:`hashviz.retrieval.report.score_codes`) on codes encoded
and counted once per quantizer (:func:`code_stats`), so changing the protocol, k, ties or radius recounts nothing
under a closed-form tie order. Quantizers arrive as :class:`~hashviz.session.runs.FittedQuantizer` records keyed
by id (a registry name such as ``"hq"``, or ``"live:…"`` for a rotation trained on the Rotation page)."""

from __future__ import annotations

import io
import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hashviz.embeddings import Embeddings

# long-form column labels of the tie spread (numeric), and the quantizer × bits view of their difference
TIE_SPREAD = "tie spread (optimistic − pessimistic)"


@dataclass(frozen=True)
class CodeStats:
    """What Compare needs of one quantizer's codes that no protocol choice changes: the packed query and
    database codes (encoded once) with their Hamming count (``problem``: the per-distance counts are computed on
    first use and kept, so every closed-form score under any k, radius or protocol depth reads them), the
    quantization error of the database, precision–recall by radius, and the balance and correlation of the
    database bits."""

    query_codes: np.ndarray
    database_codes: np.ndarray
    problem: object
    quantization_error: float
    precision: np.ndarray
    recall: np.ndarray
    balance: np.ndarray
    correlation: np.ndarray


def code_stats(emb: Embeddings, fitted) -> CodeStats:
    """:class:`CodeStats` of the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted``: the numbers of
    :func:`~hashviz.retrieval.metrics.precision_recall_by_radius`, :func:`~hashviz.retrieval.metrics.
    quantization_error`, ``bit_balance`` and ``bit_correlation`` on its codes."""
    from hashviz.codes import unpack_bits
    from hashviz.retrieval import metrics as M

    q_rows, db_rows = emb.mask("query"), emb.mask("database")
    quantizer = fitted.quantizer
    qc, dc = quantizer.encode(emb.z[q_rows]), quantizer.encode(emb.z[db_rows])
    problem = M._prepare(qc, dc, emb.labels[q_rows], emb.labels[db_rows])
    precision, recall = M._radius_curves(problem.counts(), M._n_bits(problem, emb.dim), "macro")
    bits = unpack_bits(dc, emb.dim)
    return CodeStats(query_codes=qc, database_codes=dc, problem=problem,
                     quantization_error=float(M.quantization_error(quantizer.transform(emb.z[db_rows]))),
                     precision=precision, recall=recall, balance=M.bit_balance(bits),
                     correlation=M.bit_correlation(bits))


def score(emb: Embeddings, fitted, *, top_k: int = 1000, ties: str | None = None, radius: int = 2,
          similarity=None, protocol: str = "hashviz", protocol_k=None, stats: CodeStats | None = None) -> dict:
    """One table row for the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted``: its Evaluation under
    ``protocol`` (every score and the optimistic/pessimistic tie bounds of mAP) — the record
    :func:`hashviz.evaluate.evaluate` returns, from the same scorer on the same codes — plus the hierarchical
    score when the run's dataset has a label hierarchy (``similarity``). ``ties``: None = the protocol's own tie
    order, else an override. ``stats``: the quantizer's :class:`CodeStats` (codes and counts kept between
    protocol changes; computed here when not given). ``quantizer`` is the id, ``label`` the display name."""
    from dataclasses import replace

    from hashviz.evaluate import check_arguments
    from hashviz.retrieval.protocols import get_protocol
    from hashviz.retrieval.report import family_of, score_codes

    check_arguments(emb, top_k=top_k, radius=radius, ties="expected" if ties is None else ties, need_train=False)
    stats = code_stats(emb, fitted) if stats is None else stats
    q_z = db_z = None
    if (get_protocol(protocol).ties if ties is None else ties) == "euclidean":  # h2q: ties by the rotated z
        q_z, db_z = (fitted.quantizer.transform(emb.z[emb.mask(s)]) for s in ("query", "database"))
    ev = score_codes(None, None, None, None, protocol=protocol, family=family_of(emb.meta), protocol_k=protocol_k,
                     ties=ties, top_k=top_k, radius=radius, q_z=q_z, db_z=db_z, _problem=stats.problem)
    ev = replace(ev, quantizer=fitted.id, n_bits=emb.dim, quantization_error=stats.quantization_error,
                 n_train=int(emb.mask("train").sum()))
    if similarity is not None:
        from hashviz.retrieval.hierarchical import mean_semantic_similarity_at_k

        q_labels, db_labels = emb.labels[emb.mask("query")], emb.labels[emb.mask("database")]
        ev = replace(ev, hierarchical_at_k=float(mean_semantic_similarity_at_k(
            stats.query_codes, stats.database_codes, q_labels, db_labels, similarity, ev.top_k,
            ties="stable" if ev.ties == "stable" else "expected")))
    return {**ev.to_dict(), "label": fitted.label}


def table_rows_by_label(rows: list[dict]) -> list[dict]:
    """Score rows with ``quantizer`` set to the display label (for figures that name lines)."""
    return [{**r, "quantizer": r.get("label", r["quantizer"])} for r in rows]


def protocol_tag(row: Mapping) -> str:
    """``"hashviz"``, ``"deephash"``, ``"hashviz, ties optimistic"``: the protocol of a score row, with its tie
    order when it is not the protocol's own (what every label of the row carries)."""
    from hashviz.retrieval.protocols import get_protocol

    proto = get_protocol(row.get("protocol", "hashviz"))
    ties = row.get("ties")
    return proto.name if ties in (None, proto.ties, "secondary") else f"{proto.name}, ties {ties}"


def _metric_columns(r: Mapping) -> dict:
    """One score row's numbers under labels that carry its protocol (name, depth, tie order), k and radius."""
    k, rad, tag = r["top_k"], r["radius"], protocol_tag(r)
    label = r.get("map_label") or f"mAP@all ({tag})"
    out = {label: r["map"], f"mAP@{k} ({tag})": r["map_at_k"], f"P@{k} ({tag})": r["p_at_k"],
           f"P@r≤{rad}": r["p_within_radius"], "quantization error": r["quantization_error"],
           f"{label} pessimistic (relevant last in ties)": r["map_pessimistic"],
           f"{label} optimistic (relevant first in ties)": r["map_optimistic"]}
    h = r.get("hierarchical_at_k")
    if h is not None and np.isfinite(h):
        hties = "stable" if r["ties"] == "stable" else "expected"
        out[f"semantic similarity@{k} (hierarchy, ties {hties})"] = h
    return out


def table(rows: list[dict]):
    """The long form: one row per quantizer × bit length, every metric a numeric column with the protocol (its
    name, depth and tie order, k, radius) in its label — ``mAP@all (hashviz)``, ``mAP@3999 (deephash)``,
    ``P@1000 (hashviz, ties optimistic)``… — and the tie spread as two numeric columns (mAP with relevant items
    last / first inside ties). This is the CSV export."""
    import pandas as pd

    return pd.DataFrame([{"quantizer": r.get("label", r["quantizer"]), "n_bits": r["n_bits"], **_metric_columns(r)}
                         for r in rows])


def cell_metrics(rows: list[dict]) -> list[str]:
    """The metrics a quantizer × bits table can show (the long form's column labels), then the tie spread."""
    if not rows:
        return []
    return [*_metric_columns(rows[0]), TIE_SPREAD]


def grid_columns(rows: list[dict]) -> list[str]:
    """The bit-length columns of :func:`grid`: ``"16 bits"``, ``"32 bits"``…"""
    return [f"{b} bits" for b in sorted({int(r["n_bits"]) for r in rows})]


def grid(rows: list[dict], metric: str):
    """Quantizer × bit length: one row per quantizer (display label, in order of appearance), one column per bit
    length (:func:`grid_columns`), the number ``metric`` (a label of :func:`cell_metrics`) in each cell; NaN where
    a quantizer does not exist at that length (a live fit trained at one length only)."""
    import pandas as pd

    if metric == TIE_SPREAD:
        values = [r["map_optimistic"] - r["map_pessimistic"] for r in rows]
    else:
        values = [_metric_columns(r).get(metric, np.nan) for r in rows]
    frame = pd.DataFrame({"quantizer": [r.get("label", r["quantizer"]) for r in rows],
                          "n_bits": [int(r["n_bits"]) for r in rows], "value": values})
    order = list(dict.fromkeys(frame["quantizer"]))
    bits = sorted(set(frame["n_bits"]))
    out = frame.pivot_table(index="quantizer", columns="n_bits", values="value", aggfunc="first", dropna=False)
    out = out.reindex(index=order, columns=bits)
    out.columns = grid_columns(rows)
    out.index.name = "quantizer"
    return out.reset_index()


def every_protocol(emb: Embeddings, fitted, *, top_k: int = 1000, radius: int = 2) -> list[dict]:
    """The same codes of ``fitted`` (a FittedQuantizer) under every protocol, each at its own depth for the run's
    dataset family: :func:`hashviz.evaluate.evaluate_protocols` (one encoding, one distance count). One dict per
    protocol (:meth:`Evaluation.to_dict` plus ``label``)."""
    from hashviz.evaluate import evaluate_protocols

    return [{**ev.to_dict(), "label": fitted.label}
            for ev in evaluate_protocols(emb, fitted.id, fitted=fitted.quantizer, top_k=top_k, radius=radius)]


def every_protocol_table(rows: list[dict]):
    """"Same codes, every protocol": one line per quantizer, one column per protocol (named with its depth, e.g.
    ``deephash: mAP@3999``), and the spread (largest − smallest) — how much of a published gap the evaluator
    alone can make."""
    import pandas as pd

    by: dict[str, dict] = {}
    for r in rows:
        line = by.setdefault(r.get("label", r["quantizer"]), {"quantizer": r.get("label", r["quantizer"]),
                                                              "n_bits": r["n_bits"]})
        line[f"{r['protocol']}: {r['map_label'].split(' (')[0]}"] = r["map"]
    out = []
    for line in by.values():
        vals = [v for k, v in line.items() if k not in ("quantizer", "n_bits") and np.isfinite(v)]
        out.append({**line, "spread (largest − smallest)": (max(vals) - min(vals)) if vals else float("nan")})
    return pd.DataFrame(out)


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
    params = dict(params)
    if params.get("protocol"):  # the evaluator's rules in words, for the run's dataset family
        from hashviz.retrieval.protocols import get_protocol
        from hashviz.retrieval.report import family_of

        family = family_of({"dataset": dict(run).get("dataset")})
        params["protocol_rules"] = get_protocol(params["protocol"]).describe(family or None)
        params["ties"] = params.get("ties") or f"the protocol's own ({get_protocol(params['protocol']).ties})"
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions, "run": dict(run),
            "protocol": {"query_vs_database": True, "relevance": "share at least one label", **params},
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
        state = q.state()
        arrays[f"rotation_{s}"], arrays[f"mean_{s}"] = state["rotation"], state["mean"]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
