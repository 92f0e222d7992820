"""Comparison tables, curves, bit statistics and exports, UI-free. Scores come from
:func:`hashviz.evaluate.evaluate` — the function behind ``hashviz evaluate`` — so the app and the CLI print the
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


def score(emb: Embeddings, fitted, *, top_k: int = 1000, ties: str | None = None, radius: int = 2,
          similarity=None, protocol: str = "hashviz", protocol_k=None) -> dict:
    """One table row for the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted``: its Evaluation under
    ``protocol`` (one counting pass gives every score and the optimistic/pessimistic tie bounds of mAP), plus the
    hierarchical score when the run's dataset has a label hierarchy (``similarity``). ``ties``: None = the
    protocol's own tie order, else an override. ``quantizer`` is the id, ``label`` the display name."""
    from hashviz.evaluate import evaluate

    ev = evaluate(emb, fitted.id, top_k=top_k, ties=ties, radius=radius, fitted=fitted.quantizer,
                  similarity=similarity, protocol=protocol, protocol_k=protocol_k)
    return {**ev.to_dict(), "label": fitted.label}


def table_rows_by_label(rows: list[dict]) -> list[dict]:
    """Score rows with ``quantizer`` set to the display label (for figures that name lines)."""
    return [{**r, "quantizer": r.get("label", r["quantizer"])} for r in rows]


def pr_curves(emb: Embeddings, quantizers: Mapping[str, object]) -> dict:
    """Precision–recall by Hamming radius (query vs database) of each fitted quantizer, by display label."""
    from hashviz.retrieval.metrics import precision_recall_by_radius

    q, db = emb.part("query"), emb.part("database")
    return {f.label: precision_recall_by_radius(f.quantizer.encode(q.z), f.quantizer.encode(db.z), q.labels,
                                                db.labels, n_bits=emb.dim) for f in quantizers.values()}


def bit_statistics(emb: Embeddings, quantizers: Mapping[str, object]) -> dict:
    """Per quantizer (by display label): ``(balance, correlation)`` of its database bits."""
    from hashviz.codes import to_bits
    from hashviz.retrieval.metrics import bit_balance, bit_correlation

    db = emb.part("database").z
    out = {}
    for f in quantizers.values():
        bits = to_bits(f.quantizer.transform(db))
        out[f.label] = (bit_balance(bits), bit_correlation(bits))
    return out


def protocol_tag(row: Mapping) -> str:
    """``"hashviz"``, ``"deephash"``, ``"hashviz, ties optimistic"``: the protocol of a score row, with its tie
    order when it is not the protocol's own (what every label of the row carries)."""
    from hashviz.retrieval.protocols import get_protocol

    proto = get_protocol(row.get("protocol", "hashviz"))
    ties = row.get("ties")
    return proto.name if ties in (None, proto.ties, "secondary") else f"{proto.name}, ties {ties}"


def table(rows: list[dict]):
    """A DataFrame with the protocol (its name, depth and tie order, k, radius) written into every metric's label:
    ``mAP@all (hashviz)``, ``mAP@3999 (deephash)``, ``P@1000 (hashviz, ties optimistic)``…"""
    import pandas as pd

    out = []
    for r in rows:
        k, rad, tag = r["top_k"], r["radius"], protocol_tag(r)
        label = r.get("map_label") or f"mAP@all ({tag})"
        out.append({"quantizer": r.get("label", r["quantizer"]), "n_bits": r["n_bits"],
                    label: r["map"], f"mAP@{k} ({tag})": r["map_at_k"],
                    f"P@{k} ({tag})": r["p_at_k"], f"P@r≤{rad}": r["p_within_radius"],
                    "quantization error": r["quantization_error"],
                    f"{label} tie spread (pessimistic…optimistic)": f"{r['map_pessimistic']:.4f} … "
                                                                    f"{r['map_optimistic']:.4f}"})
        h = r.get("hierarchical_at_k")
        if h is not None and np.isfinite(h):
            hties = "stable" if r["ties"] == "stable" else "expected"
            out[-1][f"semantic similarity@{k} (hierarchy, ties {hties})"] = h
    return pd.DataFrame(out)


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
