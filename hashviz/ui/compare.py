"""Comparison tables and exports, UI-free. Scores come from :func:`hashviz.evaluate.evaluate` — the function
behind ``python -m hashviz evaluate`` — so the app and the CLI print the same numbers."""

from __future__ import annotations

import io
import json
import platform
import time
from collections.abc import Mapping

import numpy as np

from hashviz.embeddings import Embeddings


def score(emb: Embeddings, label: str, quantizer, *, top_k: int = 1000, ties: str = "expected",
          radius: int = 2, similarity=None) -> dict:
    """One table row: the Evaluation of ``quantizer`` plus the optimistic/pessimistic tie bounds of mAP@all
    (and the hierarchical score when the run's dataset has a label hierarchy: ``similarity``)."""
    from hashviz.evaluate import evaluate
    from hashviz.retrieval.metrics import mean_average_precision

    ev = evaluate(emb, label, top_k=top_k, ties=ties, radius=radius, fitted=quantizer, similarity=similarity)
    q, db = emb.part("query"), emb.part("database")
    qc, dc = quantizer.encode(q.z), quantizer.encode(db.z)
    lo = mean_average_precision(qc, dc, q.labels, db.labels, ties="pessimistic")
    hi = mean_average_precision(qc, dc, q.labels, db.labels, ties="optimistic")
    return {**ev.to_dict(), "map_pessimistic": float(lo), "map_optimistic": float(hi)}


def table(rows: list[dict]):
    """A DataFrame with the protocol (tie policy, k, radius) written into every metric's label."""
    import pandas as pd

    out = []
    for r in rows:
        k, rad, ties = r["top_k"], r["radius"], r["ties"]
        out.append({"quantizer": r["quantizer"], "n_bits": r["n_bits"],
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
    """Versions, seeds, parameters and protocol: enough to reproduce a table."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in ("hashviz", "numpy", "torch", "scikit-learn", "umap-learn", "streamlit", "plotly"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            if pkg == "hashviz":
                import hashviz

                versions[pkg] = hashviz.__version__
    qinfo = {}
    for name, q in quantizers.items():
        qinfo[name] = q.to_dict() if hasattr(q, "to_dict") else {"class": type(q).__name__}
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions, "run": dict(run),
            "protocol": {"query_vs_database": True, "relevance": "share at least one label", **dict(params)},
            "quantizers": qinfo, "seeds": {"split": dict(run.get("config", {})).get("dataset_options", {}).get(
                "seed", 0), "quantizers": {n: d.get("params", {}).get("random_state") for n, d in qinfo.items()}}}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower() or "q"


def export_npz(emb: Embeddings, quantizers: Mapping[str, object], meta: Mapping | None = None) -> bytes:
    """An embeddings file (``z``, ``labels``, ``split``, ``ids``, ``class_names``, ``meta``) plus, per quantizer,
    ``codes_<name>`` (packed uint8 of every row), ``rotation_<name>`` and ``mean_<name>``. It loads back with
    :meth:`Embeddings.load` (the extra arrays are ignored there) and so can be uploaded again."""
    arrays = {"z": emb.z, "labels": emb.labels, "split": emb.split, "ids": emb.ids,
              "class_names": np.array(emb.class_names, dtype=str),
              "meta": np.array(json.dumps({**emb.meta, **dict(meta or {})}, sort_keys=True, default=str)),
              "quantizer_names": np.array(list(quantizers), dtype=str)}
    for name, q in quantizers.items():
        s = _safe(name)
        arrays[f"codes_{s}"] = q.encode(emb.z)
        arrays[f"rotation_{s}"] = np.asarray(q.rotation_, dtype=np.float64)
        arrays[f"mean_{s}"] = np.asarray(getattr(q, "mean_", np.zeros(emb.dim)), dtype=np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
