"""Composite views the pages draw (figure + caption + widgets), so pages only choose and call.

Figures are built by :mod:`hashviz.viz.figures` (plotly, UI-free); everything here is the Streamlit side."""

from __future__ import annotations

import streamlit as st

from hashviz.session import compare
from hashviz.session.browse import DISPLAY_TIES as DISPLAY_TIES  # re-exported for the pages
from hashviz.session.browse import QUERY_MODES as QUERY_MODES
from hashviz.session.browse import choose_query as choose_query
from hashviz.ui import cache
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape
from hashviz.viz import figures

OWN_TIES = "protocol"  # the tie choice that keeps the protocol's own order
COMPARE_TIES = (OWN_TIES, "expected", "stable", "optimistic", "pessimistic")


def _protocol_text(name: str) -> str:
    from hashviz.retrieval.protocols import get_protocol

    p = get_protocol(name)
    return f"{p.name} ({p.ties} ties)"


def protocol_selector(where=None, *, key: str = "hv_protocol", ties_key: str | None = None,
                      tie_choices=COMPARE_TIES) -> tuple[str, str | None]:
    """The evaluation protocol (``hashviz``, ``deephash``, ``h2q``, ``orthohash``: docs/metrics.md) and, with
    ``ties_key``, a tie order that overrides the protocol's own (first choice: keep it). Both are in the URL
    (``?protocol=``, ``?ties=``) and drawn in ``where`` (a column; default the page). Returns (protocol, ties or
    None for the protocol's own order)."""
    from hashviz.retrieval.protocols import PROTOCOL_NAMES, get_protocol

    where = st if where is None else where
    init_from_param(key, "protocol", str, PROTOCOL_NAMES)
    protocol = where.selectbox("Protocol", PROTOCOL_NAMES, format_func=_protocol_text, key=key,
                               help="whose evaluator scores the codes: tie order, mAP depth for the dataset, and "
                                    "whether a query with no relevant item counts 0 (docs/metrics.md)")
    set_params(protocol=protocol)
    if ties_key is None:
        return protocol, None
    own = get_protocol(protocol).ties
    choices = list(tie_choices)
    init_from_param(ties_key, "ties", str, choices)
    ties = where.selectbox("Tie order", choices, key=ties_key,
                           format_func=lambda t: f"the protocol's own ({own})" if t == OWN_TIES else t,
                           help="order inside equal Hamming distances (overriding the protocol's is named in "
                                "every label); 'expected' lists ties in database order and scores the exact "
                                "expected AP over random orders")
    set_params(ties=None if ties == OWN_TIES else ties)
    return protocol, None if ties == OWN_TIES else ties


def shc_pair(sims, class_names, n_bits: int) -> None:
    st.subheader(f"SHC: what the hash centres were asked for, and what they give ({n_bits} bits)")
    st.caption("SHC gives each class a ±1 hash centre and places the centres so that classes the classifier "
               "confuses (left, S) get centres that share more bits (right, (1/K)·H Hᵀ): the closer the two "
               "pictures match, the better Hamming distance follows the classes' similarity.")
    st.plotly_chart(figures.similarity_pair(*sims, class_names=class_names), key="hv_shc_pair")


def coordinate_view(data, q_before, q_after, after_label: str, n_bits: int) -> None:
    """Two coordinates of the rescaled embeddings before vs after the rotation, with the ±1 corners."""
    i1, i2 = st.columns(2)
    ci = int(i1.number_input("coordinate x", 0, n_bits - 1, 0, key="hv_coord_i"))
    cj = int(i2.number_input("coordinate y", 0, n_bits - 1, min(1, n_bits - 1), key="hv_coord_j"))
    st.plotly_chart(figures.coordinate_scatter(data.coordinates(q_before), data.coordinates(q_after), ci, cj,
                                               labels=data.labels, class_names=data.emb.class_names,
                                               titles=("sign (no rotation)", after_label)), key="hv_coords")
    st.caption("Rows are rescaled to norm √n_bits; each bit is the sign of one coordinate, so points want to sit on "
               "the ±1 corners (×). The rotation moves them there without changing any distance between them.")


def class_counts(emb) -> None:
    """Items per class in each split (a class missing from the queries, or a skewed split, shows at a glance)."""
    counts = {p: emb.class_counts(emb.mask(p)) for p in ("query", "database", "train")}
    st.plotly_chart(figures.class_counts_figure(counts, emb.class_names, multi_label=emb.labels.ndim == 2),
                    key="hv_data_counts")


def selection_panel(key: str, n_bits: int, emb, sel, q_before, q_after, after_label: str, limit: int = 80) -> None:
    """The images of the rows selected on a map: how many of each class, up to ``limit`` images sampled across
    the classes (not the first rows in dataset order), and the selection as CSV (ids, classes, codes)."""
    from hashviz.session.maps import class_counts, sample_across_classes, selection_csv
    from hashviz.ui import widgets

    st.subheader("Selected images")
    if not sel:
        st.caption("Draw a lasso or a box around points in any map, or click one point: the same rows light up in "
                   "every map and their images appear here.")
        return
    counts = class_counts(emb, sel)
    shown = sample_across_classes(emb, sel, limit)
    by_class = " · ".join(f"{md_escape(name)} {c:,}" for name, c in counts[:12])
    more = f" · {len(counts) - 12} more classes" if len(counts) > 12 else ""
    st.caption(f"**{len(sel)} selected** — {by_class}{more}"
               + (f". {len(shown)} shown, sampled across the classes." if len(shown) < len(sel) else "."))
    widgets.grid(cache.thumbs(key, n_bits, shown, 48), size=48,
                 captions=[widgets.class_text(emb, r) for r in shown], tooltips=[f"row {r}" for r in shown])
    label = "".join(ch if ch.isalnum() else "_" for ch in after_label).strip("_").lower() or "after"
    st.download_button("Selection (CSV: rows, ids, classes, codes)",
                       lambda: selection_csv(emb, sel, q_before, q_after, label).encode(),
                       f"hashviz_{key}_{n_bits}bits_selection.csv", "text/csv", key="hv_sel_csv",
                       on_click="ignore")


def clicked_point(key: str, n_bits: int, data, anchor: int, q_before, q_after, after_label: str) -> None:
    """The clicked point beside its true Hamming neighbours: its image (plotly hover cannot show one), row id,
    class, split and both codes."""
    from hashviz.codes import to_bits
    from hashviz.ui import widgets
    from hashviz.viz.images import bit_string

    emb = data.emb
    left, right = st.columns([1, 4])
    with left:
        st.markdown(f"**Clicked point {anchor}**")
        widgets.grid(cache.thumbs(key, n_bits, [anchor], 96), size=96, captions=[widgets.class_text(emb, anchor)])
        z = emb.z[[anchor]]
        split = {0: "train", 1: "query", 2: "database"}.get(int(emb.split[anchor]), "?")
        st.caption(f"id {int(emb.ids[anchor])} · {split}  \nsign: `{bit_string(to_bits(q_before.transform(z))[0])}`"
                   f"  \n{md_escape(after_label)}: `{bit_string(to_bits(q_after.transform(z))[0])}`")
    with right:
        if data.position(anchor) is None:
            st.caption("This point is not on the maps' subsample; its neighbours are not shown.")
            return
        for name, bits in (("sign", data.bits_before), (after_label, data.bits_after)):
            widgets.neighbour_grid(key, n_bits, name, anchor, *data.neighbours(anchor, bits))


def compare_curves(key: str, rows: list[dict], ties: str | None, qs: dict, n_bits: int) -> None:
    """mAP against bits (every bit length), then for ``n_bits``: precision–recall by radius, bit balance and
    correlation of every quantizer (cached per quantizer: a protocol change recomputes none of them)."""
    stats = {f.id: cache.code_stats(key, n_bits, f) for f in qs.values()}
    left, right = st.columns(2)
    label = rows[0].get("map_label") if rows else None
    left.plotly_chart(figures.map_vs_bits(compare.table_rows_by_label(rows), label=label or f"mAP@all (ties {ties})"),
                      key="hv_cmp_bits")
    right.plotly_chart(figures.pr_by_radius({qs[i].label: (s.precision, s.recall) for i, s in stats.items()}),
                       key="hv_cmp_pr")
    st.caption(f"Precision–recall, bit statistics and exports below are for the sidebar's {n_bits} bits.")
    st.plotly_chart(figures.bit_balance_heatmap({qs[i].label: s.balance for i, s in stats.items()}),
                    key="hv_cmp_bal")
    st.plotly_chart(figures.bit_correlation_heatmaps({qs[i].label: s.correlation for i, s in stats.items()}),
                    key="hv_cmp_corr")


def compare_exports(run, emb, qs: dict, df, params: dict, n_bits: int) -> None:
    """CSV of the table, the codes + rotations file and the provenance, all of the same run (named by its key).
    Each file is built when its button is clicked, and a click does not rerun the page."""
    files = compare.exports(run.to_dict(), emb, qs, lambda: df.to_csv(index=False), params, n_bits)
    for col, (i, f) in zip(st.columns(len(files)), enumerate(files)):
        col.download_button(f.label, f.build, f.file_name, f.mime, key=f"hv_dl_{i}", help=f.help or None,
                            on_click="ignore")
    st.caption(f"Exports of run `{run.key}` ({md_escape(run.label)}): " + ", ".join(f"`{f.file_name}`" for f in files))


def compare_table(key: str, run, *, top_k: int, ties: str | None, radius: int, protocol: str = "hashviz"):
    """Every quantizer × bit length scored under ``protocol`` (``ties`` None: its own order; cached per protocol):
    (rows, DataFrame)."""
    from hashviz.ui.errors import attempt

    rows = []
    for n_bits in run.bit_lengths:
        qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
        rows += [attempt(cache.score_row, key, n_bits, f, top_k=top_k, ties=ties, radius=radius, protocol=protocol,
                         what="scoring") for f in qs.values()]
    return rows, compare.table(rows)


def compare_grid(rows: list[dict], long) -> None:
    """The quantizer × bit length table of one metric (chosen above it), then the long form in an expander."""
    metrics = compare.cell_metrics(rows)
    metric = st.selectbox("Number in each cell", metrics, key="hv_cmp_metric",
                          help="every metric is in the long form below and in the CSV export")
    st.dataframe(compare.grid(rows, metric), hide_index=True, key="hv_cmp_table",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in compare.grid_columns(rows)})
    with st.expander("Long form: every metric, one row per quantizer × bit length (as in the CSV)"):
        st.dataframe(long, hide_index=True, key="hv_cmp_long")


@st.cache_data(max_entries=64, show_spinner=False)
def _purities(home: str, key: str, n_bits: int, after: str, stamp: str) -> dict:
    from hashviz.session.maps import purities

    return purities(cache.map_data(key, n_bits, cache.quantizers(key, n_bits)[after]))


def purity_note(key: str, n_bits: int, after: str, where=None) -> None:
    """One caption with the neighbourhood purity of the embeddings, the sign codes and the ``after`` codes, and
    what they say about this run (``hashviz.session.maps.purity_sentence``); ``where``: a placeholder to fill (the
    page draws its maps first and fills the caption above them after)."""
    from hashviz.session.maps import purity_sentence

    qs = cache.quantizers(key, n_bits)
    p = _purities(cache.home(), key, int(n_bits), after, cache.stamp(qs[after]))
    (where or st).caption(md_escape(purity_sentence(p, qs[after].label)))


def same_codes_every_protocol(key: str, n_bits: int):
    """For the current run and bit length: the mAP each protocol reports for the very same codes of every
    quantizer, and the spread — how much of a published gap is the evaluator. Computed when asked (a toggle): the
    protocols that order ties explicitly need a pass over the database per query (h2q's Euclidean tie-break sorts
    it for every query: tens of seconds at 60,000 rows). Returns the DataFrame shown, or None."""
    from hashviz.retrieval.protocols import PROTOCOL_NAMES, get_protocol
    from hashviz.retrieval.report import family_of
    from hashviz.ui.errors import attempt

    st.subheader(f"Same codes, every protocol ({n_bits} bits)")
    emb = cache.embeddings(key, n_bits)
    on = st.toggle("Score these codes under every protocol", key="hv_cmp_every",
                   help="hashviz reuses the counts above; deephash and orthohash rank ties in database order and "
                        "h2q by the Euclidean distance of the rotated embeddings, each a pass over the database per "
                        f"query ({int(emb.mask('query').sum()):,} × {int(emb.mask('database').sum()):,} here)")
    if not on:
        st.caption("Off: the table scores each quantizer under all four evaluators (docs/metrics.md).")
        return None
    qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    rows = [r for f in qs.values() for r in attempt(cache.every_protocol_rows, key, n_bits, f,
                                                      what="scoring under every protocol")]
    df = compare.every_protocol_table(rows)
    st.dataframe(df, hide_index=True, key="hv_cmp_protocols")
    family = family_of(emb.meta) or None
    st.caption("The same codes scored by each paper's evaluator: "
               + "; ".join(md_escape(get_protocol(p).describe(family)) for p in PROTOCOL_NAMES)
               + ". The spread column is how far apart the protocols put one set of codes.")
    return df
