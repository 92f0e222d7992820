"""The results table written out: Markdown pages (:func:`markdown`, :func:`write_markdown`, sections other
commands own, :func:`write_section`) and CSV (:func:`write_csv`) of a :class:`~hashviz.results.ResultsTable`.

Nothing here trains or scores: the cells come from :func:`hashviz.results.results_table` / ``file_table``.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from hashviz.evaluate import Evaluation
from hashviz.fileio import write_text_atomic
from hashviz.quantize import quantizer_label
from hashviz.results import MAP_TARGET, TARGET_BITS, ResultsTable

CSV_COLUMNS = ("dataset", "backbone", "head", "n_bits", "quantizer", "protocol", "map", "map_k", "map_optimistic",
               "map_pessimistic", "map_at_k", "p_at_k", "p_within_radius", "quantization_error", "fit_seconds",
               "eval_seconds", "cell_seconds", "head_train_seconds", "top_k", "radius", "ties", "n_query",
               "n_database", "n_train", "n_no_relevant", "seed", "hierarchical_at_k", "head_options")


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
    for n in table.bit_lengths:
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
                     f"{MAP_TARGET} target)." if table.baselines and TARGET_BITS in table.bit_lengths else ".")]
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
                  "| head | " + " | ".join(f"{n} bits {quantizer_label(q)}" for n in table.bit_lengths
                                          for q in ("sign", "hq") if q in table.quantizers) + " |",
                  "|---|" + "---:|" * (len(table.bit_lengths) * len({"sign", "hq"} & set(table.quantizers)))]
        for h in table.heads:
            vals = [_f(table.cell(h, n, q).hierarchical_at_k) for n in table.bit_lengths for q in ("sign", "hq")
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
    lengths = ", ".join(map(str, table.bit_lengths))
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
    if {"hq", "sign"} <= set(qs) and table.bit_lengths:
        d = [(table.cell("", n, "hq").map - table.cell("", n, "sign").map, n) for n in table.bit_lengths]
        top = max(d)
        lines.append(f"- HQ ≥ sign at {sum(x >= 0 for x, _ in d)} of {len(d)} code lengths; mean gain "
                     f"{sum(x for x, _ in d) / len(d):+.4f} {label}, largest {top[0]:+.4f} ({top[1]} bits).")
    if {"hq", "itq"} <= set(qs) and table.bit_lengths:
        d = [table.cell("", n, "hq").map - table.cell("", n, "itq").map for n in table.bit_lengths]
        lines.append(f"- HQ − ITQ: mean {sum(d) / len(d):+.4f}, range {min(d):+.4f} … {max(d):+.4f}.")
    for n in table.bit_lengths:
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
    for n in table.bit_lengths:
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
                  for n in table.bit_lengths]
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
        for n in table.bit_lengths:
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
    pairs = [(h, n) for h in heads for n in table.bit_lengths]
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
    for n in table.bit_lengths:
        best = sorted(((table.best(h, n).map, h, table.best(h, n).quantizer) for h in table.heads), reverse=True)
        if best:
            out.append(f"- {n} bits: best {best[0][1]} {best[0][0]:.4f} "
                       f"({quantizer_label(best[0][2])}), lowest best {best[-1][1]} "
                       f"{best[-1][0]:.4f}.")
    for h in (h for h in table.heads if h in table.baselines):
        parts = []
        for n in table.bit_lengths:
            vals = ", ".join(f"{quantizer_label(q)} {table.cell(h, n, q).map:.4f}"
                             for q in ("sign", "rr", "itq", "hq") if q in qs)
            parts.append(f"{n} bits {vals}")
        out.append(f"- Training-free `{h}`: " + "; ".join(parts) + ".")
    if "hq" in qs and any(not math.isnan(c.hierarchical_at_k) for c in table.cells):
        for n in table.bit_lengths:
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
