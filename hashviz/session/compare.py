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


def score(emb: Embeddings, fitted, *, top_k: int = 1000, ties: str = "expected", radius: int = 2,
          similarity=None, protocol: str = "hashviz", protocol_k=None) -> dict:
    """One table row for the :class:`~hashviz.session.runs.FittedQuantizer` ``fitted``: its Evaluation under
    ``protocol`` (one counting pass gives every score and the optimistic/pessimistic tie bounds of mAP), plus the
    hierarchical score when the run's dataset has a label hierarchy (``similarity``). ``quantizer`` is the id,
    ``label`` the display name."""
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


def table(rows: list[dict]):
    """A DataFrame with the protocol (tie policy, k, radius) written into every metric's label."""
    import pandas as pd

    out = []
    for r in rows:
        k, rad, ties = r["top_k"], r["radius"], r["ties"]
        out.append({"quantizer": r.get("label", r["quantizer"]), "n_bits": r["n_bits"],
                    f"mAP@all (ties {ties})": r["map"], f"mAP@{k} (ties {ties})": r["map_at_k"],
                    f"P@{k} (ties {ties})": r["p_at_k"], f"P@r≤{rad}": r["p_within_radius"],
                    "quantization error": r["quantization_error"],
                    "mAP@all tie spread (pessimistic…optimistic)": f"{r['map_pessimistic']:.4f} … "
                                                                     f"{r['map_optimistic']:.4f}"})
        h = r.get("hierarchical_at_k")
        if h is not None and np.isfinite(h):
            hties = "stable" if ties == "stable" else "expected"
            out[-1][f"semantic similarity@{k} (hierarchy, ties {hties})"] = h
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
        state = q.state()
        arrays[f"rotation_{s}"], arrays[f"mean_{s}"] = state["rotation"], state["mean"]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
