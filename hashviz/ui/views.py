"""Composite views the pages draw (figure + caption + widgets), so pages only choose and call.

Figures are built by :mod:`hashviz.viz.figures` (plotly, UI-free); everything here is the Streamlit side."""

from __future__ import annotations

import streamlit as st

from hashviz.session import compare
from hashviz.ui import cache
from hashviz.ui.text import md_escape
from hashviz.viz import figures


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


def compare_curves(key: str, rows: list[dict], ties: str, qs: dict, n_bits: int) -> None:
    """mAP against bits (every bit length), then for ``n_bits``: precision–recall by radius, bit balance and
    correlation of every quantizer (cached per quantizer: a protocol change recomputes none of them)."""
    stats = {f.id: cache.code_stats(key, n_bits, f) for f in qs.values()}
    left, right = st.columns(2)
    left.plotly_chart(figures.map_vs_bits(compare.table_rows_by_label(rows), label=f"mAP@all (ties {ties})"),
                      key="hv_cmp_bits")
    right.plotly_chart(figures.pr_by_radius({qs[i].label: (s.precision, s.recall) for i, s in stats.items()}),
                       key="hv_cmp_pr")
    st.caption(f"Precision–recall, bit statistics and exports below are for the sidebar's {n_bits} bits.")
    st.plotly_chart(figures.bit_balance_heatmap({qs[i].label: s.balance for i, s in stats.items()}),
                    key="hv_cmp_bal")
    cols = st.columns(len(stats))
    for i, (col, (qid, s)) in enumerate(zip(cols, stats.items())):
        col.plotly_chart(figures.bit_correlation_heatmap(s.correlation, title=f"{qs[qid].label}: bit correlation"),
                         key=f"hv_cmp_corr_{i}")


def compare_exports(run, emb, qs: dict, df, params: dict, n_bits: int) -> None:
    """CSV of the table, the codes + rotations file and the provenance, all of the same run (named by its key).
    Each file is built when its button is clicked, and a click does not rerun the page."""
    files = compare.exports(run.to_dict(), emb, qs, lambda: df.to_csv(index=False), params, n_bits)
    for col, (i, f) in zip(st.columns(len(files)), enumerate(files)):
        col.download_button(f.label, f.build, f.file_name, f.mime, key=f"hv_dl_{i}", help=f.help or None,
                            on_click="ignore")
    st.caption(f"Exports of run `{run.key}` ({md_escape(run.label)}): " + ", ".join(f"`{f.file_name}`" for f in files))


def compare_table(key: str, run, *, top_k: int, ties: str, radius: int):
    """Every quantizer × bit length scored (cached per protocol): (rows, long-form DataFrame)."""
    from hashviz.ui.errors import attempt

    rows = []
    for n_bits in run.bit_lengths:
        qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
        rows += [attempt(cache.score_row, key, n_bits, f, top_k=top_k, ties=ties, radius=radius, what="scoring")
                 for f in qs.values()]
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
