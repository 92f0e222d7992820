"""Run identity in the app: runs are chosen by key everywhere; two uploads are two runs with their own names; an
import or a Prepare switches the page, the sidebar and the URL to the new run at once, even when a run was
already selected; every page and every export then refers to the run chosen."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.app.conftest import open_app, problems


def _npz(n_bits: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    labels = np.arange(600) % 6
    centres = rng.standard_normal((6, n_bits)) * 3
    z = (centres[labels] + rng.standard_normal((600, n_bits))).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, z=z, labels=labels, class_names=np.array([f"class {c}" for c in range(6)]))
    return buf.getvalue()


def _upload(at, name: str, data: bytes, switch: bool = True) -> None:
    """Upload on Data & model, wait for the background import, let the page pick up its end."""
    from hashviz.session.jobs import PREPARE_JOBS
    from hashviz.ui.widgets import JOB

    if switch:
        at.switch_page("pages/1_data.py").run()
    at.file_uploader(key="hv_npz").set_value((name, data, "application/octet-stream")).run()
    assert problems(at) == []
    job = PREPARE_JOBS.get(at.session_state[JOB])
    assert job is not None and job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()


def _current(at) -> str:
    return at.selectbox(key="hv_run_widget").value


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
                     + [s.value for s in at.success])


def test_two_uploads_are_two_runs_and_every_page_and_export_follows_the_run_chosen(fresh):
    from hashviz.session.runs import Workspace

    at = open_app("pages/1_data.py")
    _upload(at, "cifar_64.npz", _npz(64, 0))
    (a,) = Workspace(fresh).list_runs()
    assert _current(at) == a.key and at.query_params["run"] == a.key  # switched to the import at once
    _upload(at, "cifar_32.npz", _npz(32, 1))
    runs = {r.name: r for r in Workspace(fresh).list_runs()}
    assert set(runs) == {"cifar_64.npz", "cifar_32.npz"}  # one readable, unique name each
    b = runs["cifar_32.npz"]
    assert _current(at) == b.key and at.query_params["run"] == b.key  # the second import switched too
    assert "cifar_32.npz" in _texts(at) and "saved as a run" in _texts(at)
    at = open_app(query={"run": b.key})  # a reload on the second run
    options = at.selectbox(key="hv_run_widget").options
    assert sorted(options) == sorted(["cifar_64.npz", "cifar_32.npz"])

    # choose the first run in the sidebar: every page follows it
    at.selectbox(key="hv_run_widget").set_value(a.key).run()
    assert problems(at) == [] and at.query_params["run"] == a.key
    assert "Current run: cifar\\_64.npz" in _texts(at) or "Current run: cifar_64.npz" in _texts(at)
    assert at.radio(key="hv_bits_widget").options == ["64"]
    for page in ("pages/2_rotation.py", "pages/3_embeddings.py", "pages/4_queries.py", "pages/5_compare.py"):
        at.switch_page(page).run()
        assert problems(at) == [], page
        assert _current(at) == a.key and at.query_params["run"] == a.key, page  # sidebar and URL on every page
    df = at.dataframe[0].value
    assert set(df["n_bits"]) == {64}
    export_caption = next(c.value for c in at.caption if c.value.startswith("Exports of run"))
    assert a.key in export_caption and b.key not in export_caption
    assert f"hashviz_{a.key}_compare.csv" in export_caption and f"hashviz_{a.key}_64bits.npz" in export_caption
    at.switch_page("pages/4_queries.py").run()
    assert [m.value for m in at.markdown if m.value.startswith("#### ")] == ["#### 64 bits"]


@pytest.mark.slow
def test_an_import_switches_even_when_a_run_is_selected_in_the_url(fresh):
    from hashviz.session.runs import Workspace

    at = open_app("pages/1_data.py")
    _upload(at, "first.npz", _npz(16, 2))
    (first,) = Workspace(fresh).list_runs()
    at = open_app(query={"run": first.key})  # a new session opened on the first run
    assert _current(at) == first.key
    _upload(at, "second.npz", _npz(16, 3), switch=False)
    second = next(r for r in Workspace(fresh).list_runs() if r.name == "second.npz")
    assert _current(at) == second.key and at.query_params["run"] == second.key


def test_exports_carry_the_run_key_in_names_and_provenance(fresh):
    """The Compare exports of a run: each file name and the provenance name its key; the .npz loads back with
    the run's rows and the provenance records every quantizer as what it is."""
    from hashviz.embeddings import Embeddings
    from hashviz.session import compare
    from hashviz.session.runs import Workspace, stored_fitted

    ws = Workspace(fresh)
    a = ws.import_embeddings(_npz(32, 4), "a.npz")
    ws.import_embeddings(_npz(32, 5), "b.npz")
    emb = ws.load_embeddings(a.key, 32)
    qs = {n: stored_fitted(n, ws.stored_quantizer(a.key, 32, n)) for n in ("sign", "itq", "hq")}
    files = compare.exports(a.to_dict(), emb, qs, lambda: "quantizer,n_bits\n", {"ties": "expected"}, 32)
    assert [f.file_name for f in files] == [f"hashviz_{a.key}_compare.csv", f"hashviz_{a.key}_32bits.npz",
                                            f"hashviz_{a.key}_32bits_provenance.json"]
    prov = json.loads(files[2].build())
    assert prov["run"]["key"] == a.key and prov["run"]["name"] == "a.npz"
    assert set(prov["quantizers"]) == {"sign", "itq", "hq"} and prov["quantizers"]["hq"]["quantizer"] == "hq"
    back = Embeddings.load(io.BytesIO(files[1].build()))
    assert np.array_equal(back.z, emb.z)


def test_runs_can_be_renamed_and_deleted_from_the_data_page(fresh):
    from hashviz.session.runs import Workspace

    ws = Workspace(fresh)
    a = ws.import_embeddings(_npz(16, 6), "a.npz")
    b = ws.import_embeddings(_npz(16, 7), "b.npz")
    at = open_app(query={"run": a.key})
    at.text_input(key=f"hv_run_name_{a.key}").input("my CIFAR run")
    next(b_ for b_ in at.button if b_.label == "Rename").click().run()
    assert problems(at) == []
    assert {r.key: r.name for r in ws.list_runs()}[a.key] == "my CIFAR run"
    assert "my CIFAR run" in at.selectbox(key="hv_run_widget").options
    # a name another run has is refused with the reason
    at.text_input(key=f"hv_run_name_{a.key}").input("b.npz")
    next(b_ for b_ in at.button if b_.label == "Rename").click().run()
    assert any("b.npz" in e.value for e in at.error)
    at.checkbox(key="hv_run_delete_sure").check().run()
    at.button(key="hv_run_delete").click().run()
    assert problems(at) == []
    assert [r.key for r in ws.list_runs()] == [b.key]
    assert _current(at) == b.key


@pytest.mark.parametrize("clicks", [0])
def test_download_buttons_do_not_rerun_and_are_built_on_click(filled, clicks):
    at = open_app("pages/5_compare.py")
    buttons = at.get("download_button")
    assert len(buttons) == 3 and all(b.proto.ignore_rerun for b in buttons)
    assert all(b.proto.deferred_file_id for b in buttons)  # nothing built until clicked
