"""The server's files (issue 9 §2) and big or multi-length embeddings files (issue 10 §2), through the app.

Paths typed into Data & model are confined to the data roots (<home>/data and $HASHVIZ_DATA_ROOTS): anything else
gets one sentence, whether it is /etc/shadow, a folder with an id_rsa, a symlink out of a root or nothing at all —
no "found", no listing, no file content. A file too big to upload is opened by its path in a data root and imported
like an upload; one file with z_16/z_32/z_64 becomes one run with three bit lengths on every page."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.app.conftest import compare_long, open_app, problems, started_job
from tests.app.test_user_text import PAGES

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

REFUSAL = "the app opens files only inside its data folders, and this path is not inside one"
BITS = (16, 32, 64)


def _texts(at) -> str:
    from tests.app.test_user_text import _texts as strings

    return "\n".join(strings(at))


def _multi(n: int = 240, bit_lengths=BITS) -> dict:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 4
    arrays = {f"z_{b}": ((rng.standard_normal((4, b)) * 3)[labels] + rng.standard_normal((n, b))).astype(np.float32)
              for b in bit_lengths}
    return {**arrays, "labels": labels, "class_names": np.array(["cat", "dog", "owl", "yak"])}


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture
def secrets(tmp_path, fresh):
    """Things outside the data roots: a secrets folder, a .env, and a symlink to it from inside the data root."""
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (outside / "payroll_2026.txt").write_text("alice 100\n")
    env = tmp_path / ".env"
    env.write_text("DB_PASSWORD=hunter2\n")
    (fresh / "data").mkdir(parents=True)
    (fresh / "data" / "shortcut").symlink_to(outside)
    return outside, env


def _caption_for(at, typed: str) -> str:
    at.text_input(key="hv_ds_path").input(typed).run()
    assert problems(at) == []
    return next(c.value for c in at.caption if c.value.startswith(("available offline", "not available")))


def test_paths_outside_the_data_roots_get_one_answer_and_reveal_nothing(secrets):
    outside, env = secrets
    at = open_app("pages/1_data.py")
    answers = {}
    for dataset in ("imagefolder", "listfile"):
        at.selectbox(key="hv_ds").set_value(dataset).run()
        for typed in ("/etc/shadow", "/etc/passwd", str(env), str(outside), str(outside / "id_rsa"),
                      "shortcut", "shortcut/id_rsa", "../../private", "/no/such/folder"):
            answers[dataset, typed] = _caption_for(at, typed)
            assert at.button(key="hv_prepare").disabled, typed
            page = _texts(at)
            for secret in ("id_rsa", "payroll", "DB_PASSWORD", "hunter2", "root:", "OPENSSH"):
                assert secret not in page.replace(typed, ""), (typed, secret)  # only what was typed is echoed
    assert len(set(answers.values())) == 1, set(answers.values())
    assert REFUSAL in next(iter(answers.values()))
    at.selectbox(key="hv_ds").set_value("cifar10").run()
    at.text_input(key="hv_ds_cifar_root").input("/etc").run()
    assert any(c.value == next(iter(answers.values())) for c in at.caption)


def test_paths_inside_the_data_roots_say_what_is_there(fresh, tmp_path, monkeypatch):
    extra = tmp_path / "datasets"
    (extra / "mine").mkdir(parents=True)
    monkeypatch.setenv("HASHVIZ_DATA_ROOTS", str(extra))
    at = open_app("pages/1_data.py")
    at.selectbox(key="hv_ds").set_value("imagefolder").run()
    from hashviz.ui.text import md_escape

    assert _caption_for(at, "mine") == "available offline: " + md_escape(f"found {extra / 'mine'}")
    at.selectbox(key="hv_bb_imagefolder").set_value("mnist_cnn").run()  # weights on disk (resnet18's are not)
    assert not at.button(key="hv_prepare").disabled
    missing = fresh / "data" / "nothing_here"
    assert _caption_for(at, "nothing_here") == "not available: " + md_escape(f"{missing} does not exist")
    help_text = at.text_input(key="hv_ds_path").help
    assert str(fresh / "data") in help_text and str(extra) in help_text and "HASHVIZ_DATA_ROOTS" in help_text


def test_uploader_says_the_limit_and_how_to_open_bigger_files(fresh):
    at = open_app("pages/1_data.py")
    caption = " ".join(c.value for c in at.caption)
    assert "Files up to 200 MB" in caption and "open it by path below" in caption
    assert "hashviz prepare --dataset embeddings --path FILE" in caption
    assert "Files up to 200 MB" in at.get("file_uploader")[1].proto.help  # [0] is the weights uploader


def _open_by_path(at, typed: str):
    """The import the Open button started, or None when it was refused."""
    from hashviz.ui.widgets import JOB

    before = at.session_state[JOB] if JOB in at.session_state else None
    at.text_input(key="hv_npz_path").input(typed).run()
    at.button(key="hv_npz_open").click().run()
    if JOB not in at.session_state or at.session_state[JOB] == before:
        return None
    return started_job(at)


@pytest.mark.slow
def test_a_big_multi_length_file_opened_by_path_is_a_run_with_every_bit_length(fresh, monkeypatch):
    from hashviz.embeddings import load_lengths
    from hashviz.session.runs import Workspace

    arrays = _multi()
    path = fresh / "data" / "runs_by_length.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    at = open_app("pages/1_data.py")
    job = _open_by_path(at, "runs_by_length.npz")  # relative to the data folder
    assert job is not None and job.params["dataset_options"] == {"path": str(path)}
    assert job.params["max_npz_bytes"] == 4_000_000_000  # the default limit for files opened by path
    assert job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()
    assert problems(at) == []
    (run,) = Workspace(fresh).list_runs()
    assert run.bit_lengths == BITS and run.name == "runs_by_length.npz"
    assert at.session_state["hv_run"] == run.key and at.radio(key="hv_bits_widget").options == ["16", "32", "64"]
    stored = Workspace(fresh).load_embeddings(run.key, 32)
    np.testing.assert_array_equal(stored.z, load_lengths(path)[32].z)
    for bits in BITS:  # the sidebar's bit switch on every page
        at.radio(key="hv_bits_widget").set_value(bits).run()
        for page in PAGES:
            at.switch_page(page).run()
            assert problems(at) == [], (bits, page)
            assert at.session_state["hv_bits"] == bits, (bits, page)
    df = compare_long(at)  # Compare: every quantizer at every length of the file
    assert sorted(set(df["n_bits"])) == list(BITS) and len(df) == 3 * len(BITS)
    at.switch_page("pages/4_queries.py").run()
    assert [m.value for m in at.markdown if m.value.startswith("#### ")] == [f"#### {b} bits" for b in BITS]


def test_opening_by_path_is_confined_and_limited(secrets, fresh, monkeypatch):
    outside, _ = secrets
    np.savez(outside / "big.npz", **_multi())
    at = open_app("pages/1_data.py")
    for typed in (str(outside / "big.npz"), "shortcut/big.npz", "/etc/passwd"):
        assert _open_by_path(at, typed) is None, typed
        assert [e.value for e in at.error] == [REFUSAL], typed
        assert "big.npz" not in _texts(at).replace(typed, "")
    inside = fresh / "data" / "big.npz"
    np.savez(inside, **_multi())
    monkeypatch.setenv("HASHVIZ_MAX_OPEN_BYTES", "10000")
    assert _open_by_path(at, str(inside)) is None
    (error,) = [e.value for e in at.error]
    assert error.startswith("big.npz: its arrays hold ") and "over the 10.0 KB limit" in error
    assert "HASHVIZ_MAX_OPEN_BYTES sets that limit" in " ".join(i.value for i in at.info)  # the hint names it
    monkeypatch.setenv("HASHVIZ_MAX_OPEN_BYTES", "lots")
    assert _open_by_path(at, str(inside)) is None
    assert "HASHVIZ_MAX_OPEN_BYTES must be a number of bytes" in " ".join(e.value for e in at.error)
    (fresh / "data" / "folder.npz").mkdir()
    monkeypatch.delenv("HASHVIZ_MAX_OPEN_BYTES")
    assert _open_by_path(at, "folder.npz") is None
    assert any("(it is a folder)" in e.value for e in at.error)


def test_a_multi_length_upload_is_one_run_with_every_length(fresh):
    from hashviz.session.runs import Workspace

    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_npz").set_value(("three.npz", _npz_bytes(**_multi(bit_lengths=(8, 24, 40))),
                                              "application/octet-stream")).run()
    job = started_job(at)
    assert job is not None and job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()
    assert problems(at) == []
    (run,) = Workspace(fresh).list_runs()
    assert run.bit_lengths == (8, 24, 40)
    assert any("8, 24, 40 bits" in s.value and "saved as a run" in s.value for s in at.success)


def test_a_bad_file_inside_a_root_is_refused_without_quoting_it(fresh):
    """Inside the roots the app reads the file, and its messages say where and what was expected — never the
    file's content (issue 9 §2: /etc/passwd's first line and a .env's DB_PASSWORD were quoted)."""

    data = fresh / "data"
    data.mkdir(parents=True)
    (data / "binary.txt").write_bytes(b"\x89PNG DB_PASSWORD=hunter2\n")
    (data / "env.txt").write_text("DB_PASSWORD=hunter2\nroot:x:0:0:root:/root:/bin/bash\n")
    at = open_app("pages/1_data.py")
    at.selectbox(key="hv_ds").set_value("listfile").run()
    at.selectbox(key="hv_bb_listfile").set_value("mnist_cnn").run()
    at.multiselect(key="hv_bits_choice").set_value([16]).run()
    for name, expected in (("binary.txt", "not UTF-8 text: undecodable byte at offset 0"),
                           ("env.txt", "line 1: expected 'image/path.jpg 0 1 0 …', got a path without labels")):
        at.text_input(key="hv_ds_path").input(name).run()
        at.button(key="hv_prepare").click().run()
        job = started_job(at)
        assert job.join(120).status == "failed" and job.error is not None
        at.run()
        shown = " ".join(e.value for e in at.error) + " ".join(i.value for i in at.info)
        assert expected in shown.replace("\\", ""), shown  # (markdown escapes removed)
        for secret in ("hunter2", "DB_PASSWORD", "root:x", "0x89", "PNG"):
            assert secret not in shown, (name, secret)
