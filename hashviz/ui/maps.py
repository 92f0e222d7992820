"""Codes & embeddings views: layouts (PCA now, UMAP when ready), cached map figures and the selection state
(the data behind the maps is :mod:`hashviz.session.maps`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from hashviz.session.maps import point_errors as point_errors  # re-exported for the pages
from hashviz.ui.errors import attempt
from hashviz.viz.layout_jobs import jobs, request_layout
from hashviz.viz.layout_jobs import umap_enabled as umap_enabled  # re-exported for the pages
from hashviz.viz.project import layout_key, load_cached, project

SEL, ANCHOR = "hv_sel", "hv_sel_anchor"  # selected rows (list of ints) and a clicked row (int) — choices only


QUEUED = "hv_umap_queued_"  # + layout key: the first view drew this map's PCA; its UMAP starts on the next tick


@dataclass(frozen=True)
class MapLayout:
    """One map's layout as the page draws it now: the UMAP when it is ready (``is_umap``), else PCA; ``key`` is
    the UMAP's background job (None when none was asked for, e.g. while it ``waits`` for another map);
    ``submit`` starts that job when it is not running yet (the progress fragment calls it)."""

    xy: np.ndarray
    is_umap: bool
    label: str
    key: str | None = None
    waits: str | None = None
    submit: Callable[[], object] | None = None


def layout(X: np.ndarray, metric: str, label: str, reference: np.ndarray | None = None, pca_reference=None,
           umap: bool = True, waits: str | None = None) -> MapLayout:
    """The UMAP when cached/ready, else PCA at once (UMAP then computes in the background, reported under
    ``label``). ``umap=False``: PCA only, nothing started (e.g. while the layout it must align to, ``waits``, is
    still computing). The job is started by :func:`progress`, after the page has drawn its maps: on a first view
    the UMAP worker does not compete with the server and the browser for the two cores."""
    if umap and umap_enabled():
        def submit():
            return attempt(request_layout, X, method="umap", metric=metric, reference=reference, label=label,
                           stop=False, what="computing UMAP")

        key = layout_key(X, method="umap", metric=metric, reference=reference)
        failed = jobs().error(key) is not None
        Y = None if failed else load_cached(key, n=len(X))
        if Y is not None:  # a revisit: the cached UMAP, no PCA computed
            return MapLayout(Y, True, label)
        pca = project(X, method="pca", metric=metric, reference=pca_reference)
        if failed:
            submit()  # shows why the UMAP failed; the PCA view stays
            return MapLayout(pca, False, label)
        return MapLayout(pca, False, label, key=key, submit=submit)
    return MapLayout(project(X, method="pca", metric=metric, reference=pca_reference), False, label,
                     waits=waits if umap_enabled() else None)


def progress(layouts: list[MapLayout]) -> None:
    """While any map's UMAP computes: a fragment ticking every second with one true progress bar per map (stage,
    epoch n/N of the layout optimisation, time left extrapolated from the epochs done); a full rerun as soon as
    one finishes, so it is drawn and the maps that wait for it start. A map seen for the first time gets its job
    started on the fragment's first tick, after this script run has drawn the page."""
    if not umap_enabled() or all(m.is_umap for m in layouts):
        return
    if not any(m.key for m in layouts):
        return
    st.fragment(run_every=1.0)(_progress_body)(layouts)


def _progress_body(layouts: list[MapLayout]) -> None:
    running = jobs()
    lines = []
    for m in layouts:
        if m.is_umap:
            continue
        if m.key is None:
            if m.waits:
                lines.append((0.0, f"{m.label}: starts when the {m.waits} map is ready"))
            continue
        status = running.status(m.key)
        if status is None and m.submit is not None and not st.session_state.get(QUEUED + m.key):
            st.session_state[QUEUED + m.key] = True  # started on the next tick (or the next visit)
            lines.append((0.0, f"{m.label}: UMAP starts in a moment"))
            continue
        if status is None and m.submit is not None and load_cached(m.key, n=len(m.xy)) is None \
                and running.error(m.key) is None:
            st.session_state.pop(QUEUED + m.key, None)
            if m.submit() is None:  # started now (a layout that appeared meanwhile returns it: draw it)
                status = running.status(m.key)
        if status is None:  # finished (or failed): draw it, and start what waited for it
            st.rerun()
        lines.append((status.fraction, status.describe()))
    for fraction, text in lines:
        st.progress(fraction, text=text)


@st.cache_resource(max_entries=48, show_spinner=False)
def map_figure(xy: np.ndarray, labels, class_names: tuple, values, value_range, index: np.ndarray, anchor,
               highlight, selected: tuple | None, bits, shown_classes: tuple | None, value_name: str):
    """:func:`hashviz.viz.figures.embedding_map`, cached by content: a lasso reruns the maps fragment, and
    rebuilding three 10,000-point figures (plotly validates every property) was most of its server time. The
    cached figure is never mutated (``st.plotly_chart`` serialises a copy)."""
    from hashviz.viz import figures

    return figures.embedding_map(xy, labels=labels, class_names=class_names, values=values, value_range=value_range,
                                 index=index, anchor=anchor, highlight=highlight,
                                 selected=None if selected is None else list(selected), codes=bits,
                                 shown_classes=None if shown_classes is None else list(shown_classes),
                                 value_name=value_name)


# Streamlit sets plotly's clickmode to "event" whenever the drag mode is lasso or box select, so a click on a point
# selects nothing there (it only worked with the Pan tool). This script (in an empty st.iframe, run in the page's
# own origin) asks plotly for clickmode "event+select" on the lasso maps, so one click selects one point and a
# lasso selects many, both in the default drag mode: it wraps Plotly.react / Plotly.newPlot once (a figure is then
# drawn with it the first time, not drawn and then redrawn) and relayouts any map already drawn without it. If
# Streamlit's page structure ever changes, clicks simply stop selecting again; the lasso is untouched.
CLICK_SCRIPT = """<script>
(function () {
  const page = window.parent;
  function wants(layout) {
    return layout && (layout.dragmode === 'lasso' || layout.dragmode === 'select')
      && String(layout.clickmode || '').indexOf('select') < 0;
  }
  function wrap(P, name) {
    const orig = P[name];
    P[name] = function (gd, data, layout, config) {
      if (wants(layout)) layout = Object.assign({}, layout, {clickmode: 'event+select'});
      return orig.call(this, gd, data, layout, config);
    };
  }
  function fix() {
    const P = page && page.Plotly;
    if (!P) return;
    if (!P.__hvClickSelect) { P.__hvClickSelect = true; wrap(P, 'react'); wrap(P, 'newPlot'); }
    for (const gd of page.document.querySelectorAll('.js-plotly-plot')) {
      if (wants(gd._fullLayout)) P.relayout(gd, {clickmode: 'event+select'});
    }
  }
  fix();
  setInterval(fix, 250);
})();
</script>"""


def enable_click_select() -> None:
    """Let a click select one point in the lasso maps (see :data:`CLICK_SCRIPT`)."""
    st.iframe(CLICK_SCRIPT, height="content")


def on_select(chart_key: str):
    """An ``on_select`` callback storing the selected rows (flat ``customdata`` ids) in session state: the same
    rows are then highlighted in every map (linked brushing); one point is also the clicked point (anchor)."""
    def callback() -> None:
        event = st.session_state.get(chart_key) or {}
        st.session_state[SEL] = selected_rows(event)
        rows = st.session_state[SEL]
        st.session_state[ANCHOR] = rows[0] if len(rows) == 1 else None
    return callback


def selected_rows(event) -> list[int]:
    """Row ids of a plotly selection event (``customdata`` of its points; lists: their first item), sorted."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    rows = set()
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            try:
                rows.add(int(cd))
            except (TypeError, ValueError):
                continue
    return sorted(rows)


def selection(n: int) -> tuple[list[int], int | None]:
    rows = [int(r) for r in st.session_state.get(SEL) or [] if 0 <= int(r) < n]
    anchor = st.session_state.get(ANCHOR)
    anchor = int(anchor) if anchor is not None and 0 <= int(anchor) < n else None
    return rows, anchor


def clear_selection() -> None:
    st.session_state[SEL] = []
    st.session_state[ANCHOR] = None
