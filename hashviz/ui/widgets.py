"""Composite Streamlit widgets used by the pages (so pages stay short): preparation form and progress,
embeddings upload, image grids."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from hashviz.errors import HashvizError
from hashviz.session.jobs import PREPARE_JOBS
from hashviz.session.runs import DEFAULT_BITS, DEFAULT_RUN
from hashviz.ui import cache, sidebar
from hashviz.ui.errors import attempt, show_error
from hashviz.ui.text import html_escape, md_escape
from hashviz.viz.images import image_grid_html

JOB = "hv_prepare_job"
UPLOADED = "hv_uploaded"  # (upload file id, run key or None while it is imported)
ENDED = "hv_prepare_ended"  # the job whose end was already shown (stop ticking)
BIT_CHOICES = (8, 16, 24, 32, 48, 64, 96, 128)


def start_prepare(params: dict, *, own: bool = False) -> None:
    """Start (or join) a preparation in the background and rerun with its progress ticking. ``own``: the job
    belongs to this browser session (an upload's import) and stops when the session ends."""
    from hashviz.ui import sessions

    home = cache.home()
    key = json.dumps({"home": home, **params, **({"session": sessions.session_id()} if own else {})},
                     sort_keys=True, default=str)
    sid = sessions.session_id()
    PREPARE_JOBS.start(key, params, home=home, alive=(lambda: sessions.alive(sid)) if own else None)
    st.session_state[JOB] = key  # kept after the job ends
    st.session_state.pop(ENDED, None)
    st.rerun()  # redraw with the progress fragment ticking


def prepare_default_button(label: str = "Prepare default", primary: bool = True) -> None:
    if st.button(label, type="primary" if primary else "secondary", key="hv_prepare_default",
                 help="mnist5k (offline) · bundled CNN · CEL heads · 16/32/48/64 bits"):
        start_prepare(dict(DEFAULT_RUN, bit_lengths=list(DEFAULT_BITS)))


def prepare_progress() -> None:
    """Live progress of this session's preparation (a fragment that ticks only while a job runs, so an idle
    page costs nothing); Stop keeps finished bit lengths."""
    job = PREPARE_JOBS.get(st.session_state.get(JOB))
    st.fragment(run_every=0.5 if job is not None and job.running else None)(_prepare_progress)()


def _prepare_progress() -> None:
    key = st.session_state.get(JOB)
    job = PREPARE_JOBS.get(key)
    if job is None:
        return
    label = {"running": "Preparing…", "done": "Prepared", "stopped": "Stopped", "failed": "Failed"}[job.status]
    with st.status(f"{label} ({job.elapsed:.0f} s)", expanded=job.running,
                   state="running" if job.running else "complete" if job.status == "done" else "error"):
        for stage, (done, total) in job.stages.items():
            rate = job.clock.text(stage)  # e.g. "812 img/s, about 1 min left"
            st.progress(min(done / max(total, 1), 1.0),
                        text=f"{stage}: {done}/{total}" + (f" · {rate}" if rate else ""))
        if job.running:
            if st.button("Stop", key="hv_prepare_stop"):
                job.stop()
        elif job.error is not None:
            show_error(job.error)
        elif job.message:
            st.error(f"Preparation failed ({md_escape(job.message)}); details in the server log.")
    if job.running or st.session_state.get(ENDED) == key:
        return
    st.session_state[ENDED] = key  # the end is acted on once; the collapsed status stays as the record of it
    if job.status == "done" and job.result is not None:
        imported = job.params.get("dataset") == "embeddings"
        if imported:
            remember_import(job.result.key)
        sidebar.select_run(job.result.key, "imported" if imported else "prepared")
    st.rerun()  # full rerun once: the sidebar lists (and switches to) a new run; the fragment stops ticking


def prepare_form() -> None:
    """Dataset, backbone, head and bit lengths → Prepare (runs in the background).

    The backbones offered are those that suit the dataset (``hashviz.features.compatible_backbones``; the choice
    resets when the dataset changes), and Prepare stays disabled, with the reason shown, until the data and the
    weights are on disk (``hashviz.features.readiness``)."""
    from hashviz.data import list_datasets
    from hashviz.features import compatible_backbones, incompatibility, list_backbones, readiness
    from hashviz.heads.losses import list_methods

    entries = {e.name: e for e in list_datasets() if e.name != "embeddings"}
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Dataset", list(entries), format_func=lambda n: f"{n} — {entries[n].description}",
                        key="hv_ds")
    entry = entries[name]
    with c1:
        options, refused = dataset_path_inputs(entry)
    bbs = {b.name: b for b in compatible_backbones(entry)}
    # one widget per dataset: the choice resets to the dataset's best backbone when the dataset changes
    bb = c2.selectbox("Pretrained backbone", list(bbs), format_func=lambda n: f"{n} — {bbs[n].description}",
                      key=f"hv_bb_{name}")
    for other in list_backbones():
        if other.name not in bbs:
            c2.caption(f"Not offered: {md_escape(incompatibility(other, entry))}.")
    weights = c2.file_uploader("…or your own state_dict (.pt/.pth)", type=["pt", "pth"], key="hv_weights")
    head = c3.selectbox("Hashing head", list_methods(), help="cel: cosine embedding loss, no quantization term",
                        key="hv_head")
    bits = c3.multiselect("Bit lengths", BIT_CHOICES, default=list(DEFAULT_BITS), key="hv_bits_choice")
    with c3.expander("Head training and loss options"):
        head_options = head_options_inputs(head)
    if refused:
        ready, reason = False, "the path is not in a data folder (see the caption under it)"
    else:
        ready, reason = readiness(entry, bb, options=options, upload=weights is not None, bit_lengths=bits,
                                  roots=cache.workspace().data_roots())
    clicked = st.button("Prepare", type="primary", disabled=not ready, key="hv_prepare",
                        help=None if ready else f"Prepare is disabled: {reason}")
    if not ready:
        st.warning(f"Prepare is disabled — {md_escape(reason)}", icon=":material/block:")
    if clicked:
        path = None
        if weights is not None:
            path = attempt(cache.workspace().save_weights_upload, weights.getvalue(), weights.name, bb,
                           what="checking the weights file")
        start_prepare({"dataset": name, "dataset_options": options, "backbone": bb, "backbone_weights": path,
                       "head": head, "bit_lengths": sorted(bits), "head_options": head_options})


def dataset_path_inputs(entry) -> tuple[dict, bool]:
    """The path fields of a dataset (folder, list file, image root, CIFAR root) and a caption saying whether the
    data is there. Paths are confined to the data roots (:func:`hashviz.paths.confine`): one that is not inside
    them gets one message whatever it names, so the form says nothing about the server's other files.
    Returns (the options with the resolved paths, refused?)."""
    ws = cache.workspace()
    typed = {}
    if entry.needs_path:
        typed["path"] = st.text_input("Path in a data folder (image folder or list file)", key="hv_ds_path",
                                      placeholder="my_images (relative to the data folder) or an absolute path",
                                      help=_roots_help(ws))
        if entry.name == "listfile":
            typed["root"] = st.text_input("Image root folder (in a data folder)", key="hv_ds_root",
                                          placeholder="nus-wide/images")
    elif entry.name.startswith("cifar"):
        typed["root"] = st.text_input("CIFAR root (leave empty for the default)", key="hv_ds_cifar_root",
                                      help=_roots_help(ws))
    typed = {k: v.strip() for k, v in typed.items() if v and v.strip()}
    options = {}
    for k, v in typed.items():
        try:
            options[k] = str(ws.confine(v))
        except HashvizError as e:
            st.caption(f"not available: {md_escape(e.message)} — {md_escape(e.hint)}")
            return {}, True
    ok, why = entry.available_offline(roots=ws.data_roots(), **options)
    st.caption(("available offline: " if ok else "not available: ") + md_escape(why))
    return options, False


def _roots_help(ws) -> str:
    roots = ", ".join(md_escape(r) for r in ws.data_roots())
    return (f"The app opens files only inside its data folders: {roots}. The operator adds folders with "
            "HASHVIZ_DATA_ROOTS; the command line opens any path.")


def head_options_inputs(head: str) -> dict:
    """Training settings and the method's loss options (``hashviz.heads.losses.method_options``), each shown with
    its default; only values changed from the defaults are returned, so default runs keep their cached key."""
    from hashviz.heads import train as T
    from hashviz.heads.losses import method_options, parse_option_value

    out: dict = {}
    epochs = st.number_input("Epochs", 1, 1000, T.DEFAULT_EPOCHS, key="hv_head_epochs")
    lr = st.number_input("Learning rate", 1e-6, 1.0, T.DEFAULT_LR, format="%g", key="hv_head_lr")
    if int(epochs) != T.DEFAULT_EPOCHS:
        out["epochs"] = int(epochs)
    if float(lr) != T.DEFAULT_LR:
        out["lr"] = float(lr)
    for name, default in method_options(head).items():
        key = f"hv_head_{head}_{name}"
        if isinstance(default, bool):
            value = st.checkbox(name, default, key=key)
        elif isinstance(default, int):
            value = int(st.number_input(name, value=default, step=1, key=key))
        elif isinstance(default, float):
            value = float(st.number_input(name, value=default, format="%g", key=key))
        else:  # strings, and None = "decided by the method" (e.g. OrthoHash's scale √bits)
            text = st.text_input(name, "" if default is None else str(default), key=key,
                                 placeholder="method default" if default is None else None)
            value = default if text.strip() == ("" if default is None else str(default)) else parse_option_value(text)
        if value != default:
            out[name] = value
    st.caption("`python -m hashviz heads` lists these too; docs/methods.md explains them.")
    return out


def embeddings_upload() -> None:
    """Bring your own embeddings: checked at once (a bad file is refused with what is wrong), then saved and
    prepared as a run of its own in the background (progress, Stop; it ends with this browser session), and the
    app switches to it. Files over the upload limit are opened by path from a data folder instead."""
    _uploader()
    embeddings_path()


def _uploader() -> None:
    from hashviz.embeddings import EXPECTED_LAYOUT

    limit_mb = int(st.get_option("server.maxUploadSize"))
    bigger = (f"Files up to {limit_mb} MB; for a bigger one, put it in a data folder and open it by path below "
              "(or use `hashviz prepare --dataset embeddings --path FILE`).")
    layout = md_escape(EXPECTED_LAYOUT)  # markdown would take 'z_<bits>' for an HTML tag
    up = st.file_uploader("Embeddings file (.npz)", type=["npz"], help=f"{layout}. {bigger}", key="hv_npz")
    if up is None:
        st.caption(f"{layout}. One file can hold several code lengths (z_16, z_32, …): the run gets them "
                   f"all. {bigger}")
        return
    done = st.session_state.get(UPLOADED)
    if done is not None and done[0] == up.file_id:
        run = cache.workspace().get_run(done[1])
        if run is not None:
            emb = cache.embeddings(run.key, run.bit_lengths[0])
            lengths = ", ".join(str(b) for b in run.bit_lengths)
            st.success(f"{md_escape(up.name)}: {emb.n} rows, {lengths} bits; {int(emb.mask('query').sum())} "
                       f"queries, {int(emb.mask('database').sum())} database, {int(emb.mask('train').sum())} train "
                       f"— saved as a run (key `{run.key}`).")
            if st.session_state.get(sidebar.RUN) != run.key and st.button("Use it as the current run",
                                                                          key="hv_use_upload"):
                sidebar.select_run(run.key, "uploaded")
                st.rerun()
        return
    limit = limit_mb * 1_000_000
    path = attempt(cache.workspace().save_upload, up.getvalue(), up.name, limit, what="reading the upload",
                   stop=False)
    if path is None:
        return
    st.session_state[UPLOADED] = (up.file_id, None)
    start_prepare({"dataset": "embeddings", "dataset_options": {"path": str(path)}, "source_name": up.name},
                  own=True)


def embeddings_path() -> None:
    """An embeddings file on the server (too big to upload), by its path in a data folder: confined to the data
    roots, checked from its headers (size up to :func:`hashviz.paths.max_open_bytes`), then imported in the
    background like an upload."""
    from hashviz.paths import max_open_bytes

    ws = cache.workspace()
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    text = c1.text_input("…or open an .npz on the server by its path in a data folder", key="hv_npz_path",
                         placeholder="cifar10_64.npz (relative to the data folder) or an absolute path",
                         help=_roots_help(ws))
    if not c2.button("Open", key="hv_npz_open", disabled=not text.strip()):
        return
    limit = attempt(max_open_bytes, what="reading HASHVIZ_MAX_OPEN_BYTES", stop=False)
    path = None if limit is None else attempt(ws.open_embeddings_path, text.strip(), limit,
                                              what="opening the file", stop=False)
    if path is None:
        return
    start_prepare({"dataset": "embeddings", "dataset_options": {"path": str(path)}, "source_name": path.name,
                   "max_npz_bytes": limit}, own=True)


def remember_import(run_key: str) -> None:
    """The upload being imported became run ``run_key`` (shown under the uploader from now on)."""
    done = st.session_state.get(UPLOADED)
    if done is not None and done[1] is None:
        st.session_state[UPLOADED] = (done[0], run_key)


#: the protocol of the mAP ``prepare`` stores (the sidebar's and Data & model's summaries): hashviz's own
SUMMARY_LABEL = "mAP@all (hashviz)"


def summary_rows(summary) -> list[dict]:
    """Rows of the per-bit-length mAP summary (``prepare``'s scores: :data:`SUMMARY_LABEL`), one column per
    quantizer named with the protocol."""
    from hashviz.quantize import quantizer_label

    return [{"bits": int(b), **{f"{quantizer_label(k)} {SUMMARY_LABEL}": v for k, v in m.items()}}
            for b, m in sorted(summary.items(), key=lambda kv: int(kv[0]))]


def run_rows(all_runs) -> list[dict]:
    shown = sidebar.names(all_runs)
    return [{"run": shown[r.key], "bits": ", ".join(map(str, r.bit_lengths)), "status": r.status, "key": r.key}
            for r in all_runs]


def run_manager(current) -> None:
    """Every prepared run (name, bit lengths, key), and renaming or deleting the current one."""
    ws = cache.workspace()
    st.dataframe(run_rows(ws.list_runs()), hide_index=True, key="hv_runs_table")
    c1, c2 = st.columns([3, 2])
    with c1.form("hv_rename_form", border=False):
        name = st.text_input("Rename the current run", value=current.label, max_chars=120,
                             key=f"hv_run_name_{current.key}")
        if st.form_submit_button("Rename") and name.strip() != current.label:
            kept = attempt(ws.rename_run, current.key, name, what="renaming the run", stop=False)
            if kept is not None:
                st.session_state["hv_renamed"] = kept
                st.rerun()
    if "hv_renamed" in st.session_state:
        c1.success(f"Renamed to {md_escape(st.session_state.pop('hv_renamed'))}.")
    with c2:
        sure = st.checkbox("Yes, delete the current run and what only it uses", key="hv_run_delete_sure")
        if st.button("Delete the current run", disabled=not sure, key="hv_run_delete"):
            report = attempt(ws.delete_run, current.key, what="deleting the run", stop=False)
            if report is not None:
                st.session_state.pop(sidebar.RUN, None)
                st.session_state.pop(sidebar.RUN_W, None)
                st.session_state.pop("hv_run_delete_sure", None)
                st.rerun()
    st.caption("Runs are identified by their key (in the URL as ?run=…); names are for people. From the command "
               "line: `hashviz runs list|rename|delete`.")


def skipped_files(skipped) -> None:
    """Dataset files the preparation could not use (unreadable images, …): a warning and the list."""
    if not skipped:
        return
    n = len(skipped)
    st.warning(f"{n} file{'s' if n != 1 else ''} of the dataset could not be used and {'were' if n != 1 else 'was'} "
               "skipped; the run uses the others. Fix or remove them and prepare again to include them.",
               icon=":material/warning:")
    with st.expander(f"Skipped files ({n})"):
        st.dataframe([{"path": str(p), "reason": str(r)} for p, r in skipped], hide_index=True)


def selection_grid(key: str, n_bits: int, emb, sel, limit: int = 80) -> None:
    """The images of the rows selected on a map (the first ``limit``)."""
    st.subheader("Selected images")
    if not sel:
        st.caption("Draw a lasso or a box around points in any map (or click one point) to see their images here.")
        return
    shown = sel[:limit]
    st.caption(f"{len(sel)} selected" + (f", first {len(shown)} shown" if len(sel) > len(shown) else ""))
    grid(cache.thumbs(key, n_bits, shown, 48), size=48,
         captions=[emb.class_names[emb.labels[r]] if not emb.multilabel else "" for r in shown])


def neighbour_grid(key: str, n_bits: int, name: str, anchor: int, rows, dist, relevant) -> None:
    st.markdown(f"**Nearest codes to point {anchor} with {md_escape(name)}** (Hamming distance):")
    grid(cache.thumbs(key, n_bits, rows, 48), size=48, captions=[f"d={d}" for d in dist], relevant=list(relevant))


def class_text(emb, row: int) -> str:
    """The class name(s) of one row, as plain text ("—" for a row with no label)."""
    if emb.multilabel:
        names = [emb.class_names[c] for c in np.flatnonzero(emb.labels[row])]
        return ", ".join(names) or "—"
    return str(emb.class_names[emb.labels[row]])


def ranking_row(key: str, n_bits: int, query: int, k: int, ties: str | None, seed: int,
                protocol: str = "hashviz") -> None:
    """One code length on the Queries page: the top ``k`` of ``query`` for every quantizer, side by side, with
    the query's AP under ``protocol`` (``ties`` None: the protocol's own order), and below them the tie group each
    cut-off k falls in (:func:`tie_table`)."""
    from hashviz.session.browse import rank, tie_group
    from hashviz.viz.images import bit_string

    e = cache.embeddings(key, n_bits)
    qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    st.markdown(f"#### {n_bits} bits")
    cols = st.columns(len(qs))
    groups = {}
    for col, f in zip(cols, qs.values()):
        codes = cache.all_codes(key, n_bits, f)  # encoded once per quantizer: a new query encodes nothing
        r = attempt(rank, e, f.quantizer, query, k, ties, seed, protocol, codes, what="ranking")
        groups[f.label] = attempt(tie_group, e, f.quantizer, query, k, codes, what="counting ties")
        with col:
            ap = "–" if np.isnan(r.ap) else f"{r.ap:.3f}"
            st.markdown(f"**{md_escape(f.label)}** · {r.ap_label} {ap} · {int(r.relevant.sum())}/{len(r.rows)} ✓")
            tips = [f"distance {d} · code {bit_string(b)}" for d, b in zip(r.distances, r.bits)]
            grid(cache.thumbs(key, n_bits, r.rows, 44), size=44, captions=[f"d={d}" for d in r.distances],
                 relevant=list(r.relevant), tooltips=tips)
            st.caption(f"query code: {bit_string(r.query_bits)}")
    st.dataframe(tie_rows(groups), hide_index=True, key=f"hv_q_ties_{n_bits}")


def _ap_text(v: float) -> str:
    return "–" if np.isnan(v) else f"{v:.3f}"


def tie_rows(groups: dict) -> list[dict]:
    """One row per quantizer: the tie group its cut-off k falls in and the query's AP under three tie orders."""
    rows = []
    for label, g in groups.items():
        rows.append({
            "quantizer": label, "k-th distance": g.distance, "closer (all in top k)": g.before,
            "tied at it": g.size, "tied in top k": g.inside, "relevant tied": g.relevant,
            "AP optimistic": _ap_text(g.ap["optimistic"]), "AP expected": _ap_text(g.ap["expected"]),
            "AP pessimistic": _ap_text(g.ap["pessimistic"]),
            "AP@k opt … pess": f"{_ap_text(g.ap_at_k['optimistic'])} … {_ap_text(g.ap_at_k['pessimistic'])}"})
    return rows


TIES_TEXT = (
    "**Ties at the cut-off.** Hamming distances take only n_bits + 1 values, so the k-th result usually shares its "
    "distance with many other database items (the table under each row counts them): which of those make the top "
    "k — and where the relevant ones among them sit — is not decided by the codes at all, only by the order the "
    "ranking puts ties in. Optimistic (relevant first) and pessimistic (relevant last) are the luckiest and the "
    "unluckiest order; **expected** is the exact average over every order of the tied items, so it credits only "
    "what the codes decide: the fair default, and the default of every mAP in this app.")


@st.cache_data(max_entries=32, show_spinner="comparing every query's AP…")
def _disagreement(home: str, key: str, n_bits: int, a: str, b: str, stamps: str):
    from hashviz.session.browse import disagreement

    qs = cache.quantizers(key, n_bits)
    return disagreement(cache.embeddings(key, n_bits), qs[a].quantizer, qs[b].quantizer)


def differ_query(key: str, n_bits: int, position: int, columns) -> int:
    """"Where two quantizers differ most": two quantizers of the sidebar's bit length (default HQ vs sign) and the
    query at ``position`` of every query sorted by AP(a) − AP(b), largest first; says where it stands."""
    from hashviz.ui.params import init_from_param, set_params

    qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    ids = list(qs)
    for w, name, default in (("hv_q_a", "qa", "hq"), ("hv_q_b", "qb", "sign")):
        init_from_param(w, name, str, ids)
        if st.session_state.get(w) not in ids:
            st.session_state[w] = default if default in ids else ids[0]
    c1, c2 = columns
    a = c1.selectbox("Better?", ids, format_func=lambda i: qs[i].label, key="hv_q_a")
    b = c2.selectbox("…than", ids, format_func=lambda i: qs[i].label, key="hv_q_b")
    set_params(qa=a, qb=b)
    d = attempt(_disagreement, cache.home(), key, n_bits, a, b, cache.stamp(qs[a]) + cache.stamp(qs[b]),
                what="comparing queries")
    if not len(d.rows):
        st.warning("No query has a relevant database item: there is nothing to compare.")
        st.stop()
    pos = int(position) % len(d.rows)
    la, lb = md_escape(qs[a].label), md_escape(qs[b].label)
    better, equal, worse = d.counts
    st.caption(f"Query number {pos} of the {len(d.rows):,} queries sorted by AP({la}) − AP({lb}) at {n_bits} bits "
               f"(ties expected), largest first: AP {d.ap_a[pos]:.3f} vs {d.ap_b[pos]:.3f}, difference "
               f"**{d.gain[pos]:+.3f}**. {la} is better on {better:,} queries, equal on {equal:,}, worse on "
               f"{worse:,}.")
    return d.at(pos)


def rank_strip(key: str, n_bits: int, query: int, k: int, ties: str, seed: int) -> None:
    """Where each quantizer ranks the query's relevant items, beyond the top k too (sidebar's bit length)."""
    from hashviz.session.browse import relevant_ranks
    from hashviz.viz.figures import rank_strip as figure

    e = cache.embeddings(key, n_bits)
    qs = attempt(cache.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    ranks = {f.label: attempt(relevant_ranks, e, f.quantizer, query, ties, seed,
                              codes=cache.all_codes(key, n_bits, f), what="ranking") for f in qs.values()}
    n_rel = next(iter(ranks.values()))[1]
    if n_rel == 0:
        st.caption("This query has no relevant database item.")
        return
    limit = int(min(len(e.z[e.mask("database")]), max(2 * n_rel, 3 * k)))
    st.plotly_chart(figure({lb: r for lb, (r, _) in ranks.items()}, k=k, n_relevant=n_rel, max_rank=limit),
                    key="hv_q_strip")
    parts = [f"{md_escape(lb)} {int((r <= k).sum())} in the top {k}, {int((r <= n_rel).sum())} in the first "
             f"{n_rel}" for lb, (r, _) in ranks.items()]
    st.caption(f"Relevant items of this query at {n_bits} bits: {n_rel}. " + " · ".join(parts) + ". Order inside "
               f"ties: {'database order (the display order of expected)' if ties == 'expected' else ties}.")


def grid(images: np.ndarray, **kw) -> None:
    st.html(image_grid_html(images, **kw))


def class_samples(key: str, n_bits: int, per_class: int = 8) -> None:
    """A few images of each class (database split), one row per class."""
    emb = cache.embeddings(key, n_bits)
    if emb.multilabel:
        rows = np.arange(min(emb.n, per_class * 10))
        grid(cache.thumbs(key, n_bits, rows, 40), size=40)
        return
    for c, name in enumerate(emb.class_names[:20]):
        rows = np.flatnonzero(emb.labels == c)[:per_class]
        if len(rows):
            st.html(f"<b>{html_escape(name)}</b>" + image_grid_html(cache.thumbs(key, n_bits, rows, 40), size=40))
