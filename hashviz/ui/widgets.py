"""Composite Streamlit widgets used by the pages (so pages stay short): preparation form and progress,
embeddings upload, image grids."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from hashviz.ui import runs, state
from hashviz.ui.jobs import PREPARE_JOBS
from hashviz.viz.images import image_grid_html

JOB = "hv_prepare_job"
ENDED = "hv_prepare_ended"  # the job whose end was already shown (stop ticking)
BIT_CHOICES = (8, 16, 24, 32, 48, 64, 96, 128)


def start_prepare(params: dict) -> None:
    key = json.dumps(params, sort_keys=True, default=str)
    PREPARE_JOBS.start(key, params)
    st.session_state[JOB] = key
    st.session_state.pop(ENDED, None)
    st.rerun()  # redraw with the progress fragment ticking


def prepare_default_button(label: str = "Prepare default", primary: bool = True) -> None:
    if st.button(label, type="primary" if primary else "secondary", key="hv_prepare_default",
                 help="mnist5k (offline) · bundled CNN · CEL heads · 16/32/48/64 bits"):
        start_prepare(dict(runs.DEFAULT_RUN, bits=list(runs.DEFAULT_BITS)))


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
            state.show_error(job.error)
        elif job.message:
            st.error(f"Preparation failed ({job.message}); details in the server log.")
    if job.running:
        return
    if job.status == "done" and job.result is not None:
        st.session_state.pop(JOB, None)
        st.session_state[state.RUN] = job.result.key
        st.rerun()  # full rerun: the sidebar lists the new run
    elif st.session_state.get(ENDED) != key:
        st.session_state[ENDED] = key
        st.rerun()  # full rerun once: the fragment stops ticking, the message stays


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
    options = {}
    if entry.needs_path:
        options["path"] = c1.text_input("Local path (folder or list file)", placeholder="/data/my_images",
                                        key="hv_ds_path")
        if name == "listfile":
            options["root"] = c1.text_input("Image root folder", placeholder="/data/nus-wide/images")
    elif name.startswith("cifar"):
        options["root"] = c1.text_input("CIFAR root (leave empty for the default)", key="hv_cifar_root") or None
    ok, why = entry.available_offline(**{k: v for k, v in options.items() if v})
    c1.caption(("available offline: " if ok else "not available: ") + why)
    bbs = {b.name: b for b in compatible_backbones(entry)}
    # one widget per dataset: the choice resets to the dataset's best backbone when the dataset changes
    bb = c2.selectbox("Pretrained backbone", list(bbs), format_func=lambda n: f"{n} — {bbs[n].description}",
                      key=f"hv_bb_{name}")
    for other in list_backbones():
        if other.name not in bbs:
            c2.caption(f"Not offered: {incompatibility(other, entry)}.")
    weights = c2.file_uploader("…or your own state_dict (.pt/.pth)", type=["pt", "pth"], key="hv_weights")
    head = c3.selectbox("Hashing head", list_methods(), help="cel: cosine embedding loss, no quantization term",
                        key="hv_head")
    bits = c3.multiselect("Bit lengths", BIT_CHOICES, default=list(runs.DEFAULT_BITS), key="hv_bits_choice")
    with c3.expander("Head training and loss options"):
        head_options = head_options_inputs(head)
    ready, reason = readiness(entry, bb, options=options, upload=weights is not None, bits=bits)
    clicked = st.button("Prepare", type="primary", disabled=not ready, key="hv_prepare",
                        help=None if ready else f"Prepare is disabled: {reason}")
    if not ready:
        st.warning(f"Prepare is disabled — {reason}", icon=":material/block:")
    if clicked:
        path = None
        if weights is not None:
            path = state.attempt(runs.save_weights_upload, weights.getvalue(), weights.name, bb,
                                 what="checking the weights file")
        start_prepare({"dataset": name, "dataset_options": options, "backbone": bb, "backbone_weights": path,
                       "head": head, "bits": sorted(bits), "head_options": head_options})


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
    """Bring your own embeddings: validated, saved as a run of its own, then every page works on it."""
    from hashviz.embeddings import EXPECTED_LAYOUT

    up = st.file_uploader("Embeddings file (.npz)", type=["npz"], help=EXPECTED_LAYOUT, key="hv_npz")
    if up is None:
        st.caption(EXPECTED_LAYOUT)
        return
    limit = int(st.get_option("server.maxUploadSize")) * 1_000_000
    run = state.attempt(runs.import_embeddings, up.getvalue(), up.name, limit, what="reading the upload", stop=False)
    if run is None:
        return
    emb = state.embeddings(run.key, run.bits[0])
    st.success(f"{up.name}: {emb.n} rows × {emb.dim} dims; {int(emb.mask('query').sum())} queries, "
               f"{int(emb.mask('database').sum())} database, {int(emb.mask('train').sum())} train — saved as a run.")
    if st.session_state.get(state.RUN) != run.key and st.button("Use it as the current run", key="hv_use_upload"):
        st.session_state[state.RUN] = run.key
        st.rerun()
    if st.button("Evaluate sign / ITQ / HQ now", key="hv_eval_upload"):
        from hashviz.evaluate import evaluate, results_table

        res = state.attempt(lambda: [evaluate(emb, n) for n in ("sign", "itq", "hq")], what="evaluating")
        st.dataframe(results_table(res), hide_index=True)


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


def grid(images: np.ndarray, **kw) -> None:
    st.html(image_grid_html(images, **kw))


def class_samples(key: str, n_bits: int, per_class: int = 8) -> None:
    """A few images of each class (database split), one row per class."""
    emb = state.embeddings(key, n_bits)
    if emb.multilabel:
        rows = np.arange(min(emb.n, per_class * 10))
        grid(state.thumbs(key, n_bits, rows, 40), size=40)
        return
    for c, name in enumerate(emb.class_names[:20]):
        rows = np.flatnonzero(emb.labels == c)[:per_class]
        if len(rows):
            st.html(f"<b>{name}</b>" + image_grid_html(state.thumbs(key, n_bits, rows, 40), size=40))
