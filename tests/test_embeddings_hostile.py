"""Hostile and careless embeddings files (issue 9 §3, §5): each is written here, byte for byte, and must be refused
with a message saying what is wrong — cheaply, before anything big is allocated — or, for huge label ids, be
remapped to its distinct values."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from hashviz.data import embeddings_file as emb_module
from hashviz.embeddings import (
    MAX_NPZ_BYTES,
    ArrayInfo,
    Embeddings,
    default_max_bytes,
    inspect_npz,
    npz_size_limit,
)
from hashviz.errors import InvalidInputError
from tests.helpers import clustered_embeddings

N = 60


@pytest.fixture
def arrays():
    z, labels = clustered_embeddings(n_per_class=12, n_classes=5, n_bits=8, seed=2)
    return {"z": z, "labels": labels}


def npz_bytes(**arrays) -> io.BytesIO:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    return buf


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


def refused(source, needle: str, **kwargs) -> InvalidInputError:
    """Load ``source`` expecting InvalidInputError whose message contains ``needle``; also measure the peak of
    Python/numpy allocations during the attempt (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError) as e:
            Embeddings.load(source, name="upload.npz", **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert needle in e.value.message, e.value.message
    assert e.value.hint
    assert peak < 20 * 2**20, f"refusing took {peak / 2**20:.0f} MiB"
    return e.value


# ---- §3: tiny inputs that exhaust memory ---------------------------------------------------------------------------
def test_one_label_of_a_billion_is_remapped_to_the_distinct_values(arrays):
    labels = arrays["labels"].copy()
    labels[0] = 10**9
    tracemalloc.start()
    try:
        emb = Embeddings.load(npz_bytes(z=arrays["z"], labels=labels), name="u.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # before: 10⁹ class names (4 GB in the app server, MemoryError in the CLI)
    values = sorted(set(labels.tolist()))
    assert emb.class_names == tuple(str(v) for v in values)
    # the same partition of the rows, renumbered 0..k-1 in the order of the original values
    np.testing.assert_array_equal(emb.labels, np.searchsorted(values, labels))
    assert emb.class_names[emb.labels[0]] == "1000000000"
    # relevance (same label) is unchanged, so every retrieval score is
    assert np.array_equal(emb.labels[:, None] == emb.labels[None], labels[:, None] == labels[None])


def test_dense_labels_are_left_as_they_are(arrays):
    labels = arrays["labels"].copy()
    labels[labels == 2] = 7  # ids up to 7 < n rows: not remapped, class names 0..7
    emb = Embeddings.load(npz_bytes(z=arrays["z"], labels=labels))
    np.testing.assert_array_equal(emb.labels, labels)
    assert emb.class_names == tuple(str(i) for i in range(8))


def test_a_huge_label_with_class_names_is_refused_cheaply(arrays):
    labels = arrays["labels"].copy()
    labels[0] = 10**9
    refused(npz_bytes(z=arrays["z"], labels=labels, class_names=np.array(list("abcde"))),
            "5 class names for 1000000001 classes")


def test_too_many_distinct_classes_are_refused(arrays, monkeypatch):
    monkeypatch.setattr(emb_module, "MAX_CLASSES", 10)
    labels = np.arange(N) * 1000
    refused(npz_bytes(z=arrays["z"], labels=labels), "60 distinct values; hashviz handles at most 10 classes")
    multi = np.eye(N, 11, dtype=np.uint8)
    refused(npz_bytes(z=arrays["z"], labels=multi), "multi-label rows have 11 columns; hashviz handles 1 to 10")


def _zero_bomb(path, rows=1_000_000, cols=128) -> None:
    """What ``np.savez_compressed(path, z=np.zeros((rows, cols), np.float32))`` writes, streamed so the test never
    holds the 512 MB array: a ~2 MB file whose zip directory says 512 MB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("labels.npy", npy_bytes(np.zeros(rows, np.int64)), compress_type=zipfile.ZIP_DEFLATED)
        with zf.open("z.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array_header_1_0(m, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)})
            chunk = bytes(16 * 2**20)
            left = rows * cols * 4
            while left:
                m.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))


def test_zero_filled_compressed_million_rows_is_refused_from_the_zip_headers(tmp_path):
    path = tmp_path / "bomb.npz"
    _zero_bomb(path)
    assert path.stat().st_size < 5e6
    info = inspect_npz(path)  # headers only
    assert info["z"] == ArrayInfo((1_000_000, 128), np.dtype("<f4"), 512_000_000)
    assert info["labels"].nbytes == 8_000_000
    e = refused(path, "its arrays hold 520.0 MB uncompressed, over the 256.0 MB limit")
    assert "python -m hashviz evaluate" in e.hint
    refused(path, "over the 100.0 MB limit", max_bytes=100_000_000)


def test_the_limit_is_configurable_and_the_cli_context_lifts_it(arrays, tmp_path, monkeypatch):
    path = tmp_path / "e.npz"
    np.savez(path, **arrays)
    size = sum(i.nbytes for i in inspect_npz(path).values())
    assert Embeddings.load(path).n == N
    refused(path, "over the 1.0 KB limit", max_bytes=1000)
    monkeypatch.setattr(emb_module, "MAX_NPZ_BYTES", size - 1)  # the module constant is read at each call
    assert default_max_bytes() == size - 1
    refused(path, "uncompressed, over the")
    assert Embeddings.load(path, max_bytes=None).n == N
    with npz_size_limit(None):
        assert default_max_bytes() is None
        assert Embeddings.load(path).n == N
    assert default_max_bytes() == size - 1
    assert MAX_NPZ_BYTES == 256_000_000


def test_a_header_claiming_a_trillion_rows_is_refused_before_allocating(arrays):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 128)})
    forged = head.getvalue() + bytes(64)
    source = zip_of({"z.npy": forged, "labels.npy": npy_bytes(arrays["labels"])})
    e = refused(source, "'z' declares shape (1000000000000, 128) float32 (512.0 TB) but holds only 64 bytes")
    assert "truncated or its header is forged" in e.message
    # before: MemoryError "Unable to allocate 466. TiB"


def test_a_truncated_member_says_truncated_not_python_objects(arrays):
    whole = npy_bytes(arrays["z"])
    source = zip_of({"z.npy": whole[: len(whole) // 2], "labels.npy": npy_bytes(arrays["labels"])})
    e = refused(source, "'z' declares shape (60, 8) float32")
    assert "truncated" in e.message and "Python objects" not in e.message


def test_damaged_compressed_data_is_reported():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 8)).astype(np.float32)  # 128 KB, compresses little
    source = zip_of({"z.npy": npy_bytes(z), "labels.npy": npy_bytes(np.arange(4000) % 5)},
                    compression=zipfile.ZIP_DEFLATED)
    raw = bytearray(source.getvalue())
    middle = raw.index(b"z.npy") + 60_000  # inside z's compressed data, far past its header
    raw[middle:middle + 64] = bytes(64)
    refused(io.BytesIO(bytes(raw)), "member 'z' is damaged (its data could not be read)")


def test_a_damaged_npy_header(arrays):
    bad = b"\x93NUMPY\x01\x00" + (60).to_bytes(2, "little") + b"{'descr': <f4, nonsense" + b" " * 36 + b"\n"
    refused(zip_of({"z.npy": bad, "labels.npy": npy_bytes(arrays["labels"])}), "'z' has a damaged .npy header")


def test_other_members_are_neither_read_nor_counted(arrays, tmp_path):
    path = tmp_path / "extra.npz"
    _zero_bomb(path, rows=100_000)  # writes z and labels; then a proper file with a bomb under another name
    with zipfile.ZipFile(path) as zf:
        bomb = zf.read("z.npy")
    source = zip_of({"z.npy": npy_bytes(arrays["z"]), "labels.npy": npy_bytes(arrays["labels"]),
                     "notes.txt": b"free text", "big_extra.npy": bomb}, compression=zipfile.ZIP_DEFLATED)
    emb = Embeddings.load(source, max_bytes=10_000)
    assert emb.n == N
    assert set(inspect_npz(source)) == {"z", "labels", "big_extra"}  # notes.txt is not an array


def test_object_arrays_are_refused_from_the_header(arrays):
    obj = np.array([{"a": 1}] * N, dtype=object)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, obj, allow_pickle=True)
    e = refused(zip_of({"z.npy": npy_bytes(arrays["z"]), "labels.npy": buf.getvalue()}), "Python objects")
    assert "does not unpickle" in e.message


# ---- §5: rough edges -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("meta, needle", [
    ("[1, 2]", "meta must be a JSON object ({...}), got a JSON list"),
    ("5", "meta must be a JSON object ({...}), got a JSON int"),
    ("{not json", "meta is not valid JSON"),
    ("[" * 100_000, "meta is not valid JSON"),
])
def test_meta_that_is_not_a_json_object(arrays, meta, needle):
    refused(npz_bytes(**arrays, meta=np.array(meta)), needle)


def test_meta_of_the_wrong_kind(arrays):
    refused(npz_bytes(**arrays, meta=np.arange(3)), "meta must be one string holding a JSON object")


def test_meta_object_is_kept(arrays):
    emb = Embeddings.load(npz_bytes(**arrays, meta=np.array(json.dumps({"model": "mine"}))), name="m.npz")
    assert emb.meta == {"model": "mine", "source": "m.npz"}


@pytest.mark.parametrize("ids, needle", [
    (np.array([f"img{i}" for i in range(N)]), "ids must be integers >= 0 (an index into the source dataset), "
                                                  "got <U5"),
    (np.arange(N) - 1, "ids must be integers >= 0"),
    (np.arange(N) + 0.5, "ids must be integers >= 0"),
    (np.arange(N - 1), "ids must have shape (60,), got (59,)"),
])
def test_bad_ids(arrays, ids, needle):
    refused(npz_bytes(**arrays, ids=ids), needle)


def test_integral_float_ids_are_accepted(arrays):
    emb = Embeddings.load(npz_bytes(**arrays, ids=np.arange(N, dtype=float) * 2))
    assert emb.ids.dtype == np.int64 and emb.ids[-1] == 2 * (N - 1)


@pytest.mark.parametrize("key, value, needle", [
    ("class_names", np.arange(6).reshape(2, 3), "class_names must be a 1-D array of strings"),
    ("image_paths", np.arange(N), "image_paths must be a 1-D array of strings"),
    ("labels", np.array([np.inf] * N), "single labels must be integers"),
    ("labels", np.full(N, 1e300), "single labels must be integers"),
    ("labels", np.zeros((N, 0), np.uint8), "multi-label rows have 0 columns"),
    ("split", np.array(["q"] * N), "split must be (n,) = (60,) with values 0..4"),
])
def test_other_bad_arrays(arrays, key, value, needle):
    refused(npz_bytes(**{**arrays, key: value}), needle)


@pytest.mark.parametrize("rows, needle", [
    (0, "upload.npz has no rows (z has shape (0, 8)); an embeddings file needs at least 3 (1 query and 2 train rows)"),
    (2, "upload.npz has only 2 rows (z has shape (2, 8))"),
])
def test_empty_and_tiny_files(rows, needle):
    refused(npz_bytes(z=np.zeros((rows, 8), np.float32), labels=np.zeros(rows, np.int64)), needle)


@pytest.mark.parametrize("codes, needle", [
    ([2] * N, "the split of upload.npz leaves no train rows (0 query, 0 train and 60 database rows of 60); "
              "quantizers are fitted on the train rows and need at least 2"),
    ([1] * 5 + [2] * (N - 5), "leaves no train rows (5 query, 0 train and 55 database rows of 60)"),
    ([1] * N, "the split of upload.npz leaves no database row (60 query, 0 train and 0 database rows of 60)"),
    ([0] * N, "the split of upload.npz leaves no query row (0 query, 60 train and 60 database rows of 60)"),
    ([1] + [0] + [2] * (N - 2), "leaves only 1 train row (1 query, 1 train and 59 database rows of 60)"),
])
def test_splits_without_query_train_or_database_rows(arrays, codes, needle):
    e = refused(npz_bytes(**arrays, split=np.array(codes, np.uint8)), needle)
    assert "z must be a 2-D array" not in e.message
    assert "leave 'split' out" in e.hint


def test_an_empty_part_says_which_split(arrays):
    emb = Embeddings(z=arrays["z"], labels=arrays["labels"], split=np.zeros(N, np.uint8))
    with pytest.raises(InvalidInputError) as e:
        emb.part("query")
    assert e.value.message == "the query split is empty: no row has split code 1 (of 60 rows)"
    assert emb.part("train").n == N and emb.part("database").n == N


def test_messages_do_not_quote_unknown_member_names():
    source = zip_of({"<b>evil</b>.npy": npy_bytes(np.zeros((4, 2))), "feats.npy": npy_bytes(np.zeros((4, 2)))})
    e = refused(source, "has no 'z' or 'features' array (found: feats and 1 other)")
    assert "evil" not in e.message


def test_not_a_zip_and_a_single_array(tmp_path):
    refused(io.BytesIO(b"PK\x03\x04 but not really a zip file"), "is not a readable .npz file")
    np.save(tmp_path / "one.npy", np.zeros(3))
    refused(tmp_path / "one.npy", "holds a single array, not an .npz archive")
    with pytest.raises(InvalidInputError, match="is a folder"):
        Embeddings.load(tmp_path)
