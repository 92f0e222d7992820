"""Cached loaders for the pages, shared across sessions and never mutated.

Each cached function takes everything it uses — the hashviz home, the run key, the bit length — and builds its
result from a :class:`~hashviz.session.runs.Workspace` on that home, so a cache key is exactly what the value
depends on. Session state holds only keys and choices; arrays come from here."""

from __future__ import annotations

import json

import streamlit as st

from hashviz.session.runs import FittedQuantizer, Workspace, live_fitted, stored_fitted
from hashviz.ui.errors import attempt


def home() -> str:
    """The hashviz home this server works on (``$HASHVIZ_HOME`` or ``~/.hashviz``, read on every call)."""
    from hashviz.paths import home as current

    return str(current())


def workspace() -> Workspace:
    return Workspace(home())


@st.cache_resource(max_entries=32, show_spinner=False)
def _embeddings(home: str, key: str, n_bits: int):
    return Workspace(home).load_embeddings(key, n_bits)


def embeddings(key: str, n_bits: int):
    """The run's embeddings for ``n_bits`` (cached per home folder, run key and bit length)."""
    return _embeddings(home(), key, int(n_bits))


@st.cache_resource(max_entries=8, show_spinner=False)
def _dataset(home: str, key: str):
    return Workspace(home).load_dataset(key)


def dataset(key: str):
    return _dataset(home(), key)


@st.cache_data(max_entries=16, show_spinner=False)
def _head_details(home: str, key: str) -> list[dict]:
    return Workspace(home).head_details(key)


def head_details(key: str) -> list[dict]:
    return _head_details(home(), key)


@st.cache_resource(max_entries=8, show_spinner=False)
def _class_similarity(home: str, key: str):
    from hashviz.retrieval.hierarchical import dataset_similarity

    return dataset_similarity(_dataset(home, key))


def class_similarity(key: str):
    """The run's (c, c) class similarity from its label hierarchy, or None (cached; never mutated)."""
    return _class_similarity(home(), key)


@st.cache_resource(max_entries=32, show_spinner=False)
def _head_similarities(home: str, key: str, n_bits: int):
    return Workspace(home).head_similarities(key, n_bits)


def head_similarities(key: str, n_bits: int):
    """SHC's (class similarity, centre similarity) for the run's head at ``n_bits``, or None (cached)."""
    return _head_similarities(home(), key, int(n_bits))


def paired_quantizers(head: str | None) -> tuple[str, ...]:
    """The quantizers a head method's paper pairs with it (``HeadLoss.paired_quantizers``), () if none/unknown."""
    if not head:
        return ()
    from hashviz.errors import HashvizError
    from hashviz.heads.losses import get_method

    try:
        return tuple(get_method(head).paired_quantizers)
    except HashvizError:
        return ()


@st.cache_resource(max_entries=64, show_spinner="fitting the quantizer on the train split…")
def _fitted(home: str, key: str, n_bits: int, name: str, options_json: str = "{}"):
    """The quantizer ``prepare`` fitted and stored for this run (the CLI's), else one fitted now on the train
    split (cached per home, run, bit length, name and options)."""
    from hashviz.evaluate import fit_quantizer

    ws = Workspace(home)
    if options_json == "{}":
        q = ws.stored_quantizer(key, n_bits, name)
        if q is not None:
            return q
    q, _ = fit_quantizer(_embeddings(home, key, n_bits), name, json.loads(options_json))
    return q


def fitted(key: str, n_bits: int, name: str, options_json: str = "{}"):
    return _fitted(home(), key, int(n_bits), name, options_json)


@st.cache_resource(max_entries=64, show_spinner=False)
def _live(home: str, key: str, n_bits: int, fit_id: str, saved_at: float, own: bool) -> FittedQuantizer:
    """A saved live fit as a quantizer (cached per checkpoint: ``saved_at`` changes with every new one)."""
    from hashviz.quantize import make_quantizer

    saved = Workspace(home).load_live_fit(key, n_bits, fit_id)
    q = make_quantizer("sign", n_bits).set_rotation(saved["rotation"], saved["mean"])
    return live_fitted(saved, q, own=own)


def _quantizers(home: str, key: str, n_bits: int, owner: str | None, names=None, with_live: bool = True) -> dict:
    ws = Workspace(home)
    if names is None:
        names = tuple(dict.fromkeys(("sign", "itq", "hq") + ws.stored_quantizer_names(key, n_bits)))
    out = {n: stored_fitted(n, _fitted(home, key, n_bits, n)) for n in names}
    if with_live:
        for fit in ws.live_fits(key, n_bits, owner):
            f = attempt(_live, home, key, n_bits, fit.fit_id, fit.saved, fit.owner == owner, stop=False)
            if f is not None:
                out[f.id] = f
    return out


def quantizers(key: str, n_bits: int, names=None, with_live: bool = True) -> dict[str, FittedQuantizer]:
    """Quantizer id → :class:`FittedQuantizer`: those ``prepare`` fitted for the run (sign, ITQ, HQ and the
    head's paired ones, e.g. random search for SDSH; ``names`` to choose) plus the rotations trained live on this
    run and bit length that this browser may see — its own and shared ones (ids ``live:<fit id>``)."""
    from hashviz.ui.sessions import owner

    return _quantizers(home(), key, int(n_bits), owner(), names, with_live)


def stamp(f: FittedQuantizer) -> str:
    """Changes whenever the quantizer behind an id does (a live fit's new checkpoint): part of score cache keys."""
    return json.dumps(f.provenance, sort_keys=True, default=str)


def thumbs(key: str, n_bits: int, rows, size: int = 56):
    h = home()
    emb = _embeddings(h, key, int(n_bits))
    return Workspace(h).thumbnails(key, emb, rows, size, dataset=None if emb.thumbnails is not None
                                   else _dataset(h, key))


def _owner_of(f: FittedQuantizer) -> str:
    """The owner part of a cache key: only a live fit is looked up per browser; stored quantizers are shared."""
    from hashviz.ui.sessions import owner

    return owner() if f.id.startswith("live:") else ""


def _one(home: str, key: str, n_bits: int, qid: str, owner: str) -> FittedQuantizer:
    return _quantizers(home, key, n_bits, owner, with_live=qid.startswith("live:"))[qid]


@st.cache_resource(max_entries=32, show_spinner=False)
def _all_codes(home: str, key: str, n_bits: int, qid: str, stamp: str, owner: str):
    return _one(home, key, n_bits, qid, owner).quantizer.encode(_embeddings(home, key, n_bits).z)


def all_codes(key: str, n_bits: int, f: FittedQuantizer):
    """Packed codes of every row of the run under ``f`` (cached per home, run, bits, quantizer id and
    :func:`stamp`; never mutated): the Queries page ranks a new query without encoding the database again."""
    return _all_codes(home(), key, int(n_bits), f.id, stamp(f), _owner_of(f))


@st.cache_resource(max_entries=16, show_spinner=False)
def _map_data(home: str, key: str, n_bits: int, after: str, stamp: str, owner: str):
    from hashviz.session.maps import MapData

    return MapData.build(_embeddings(home, key, n_bits), _one(home, key, n_bits, "sign", "").quantizer,
                         _one(home, key, n_bits, after, owner).quantizer)


def map_data(key: str, n_bits: int, after: FittedQuantizer):
    """:class:`hashviz.session.maps.MapData` of the run with sign before and ``after`` (cached per home, run, bits,
    quantizer id and :func:`stamp`; never mutated): a revisit, the purity note and the map page share one build."""
    return _map_data(home(), key, int(n_bits), after.id, stamp(after), _owner_of(after))


@st.cache_resource(max_entries=32, show_spinner=False)
def _scoring_embeddings(home: str, key: str, n_bits: int):
    """The run's embeddings without thumbnails and image paths: what scoring reads (``Embeddings.part`` copies
    every array, and at 60,000 rows the thumbnails are 184 MB)."""
    from dataclasses import replace

    return replace(_embeddings(home, key, n_bits), thumbnails=None, image_paths=None)


@st.cache_resource(max_entries=128, show_spinner="counting Hamming distances…")
def _code_stats(home: str, key: str, n_bits: int, qid: str, stamp: str, owner: str):
    from hashviz.session.compare import code_stats

    return code_stats(_scoring_embeddings(home, key, n_bits), _one(home, key, n_bits, qid, owner))


def code_stats(key: str, n_bits: int, f: FittedQuantizer):
    """:func:`hashviz.session.compare.code_stats` of ``f`` — its codes and their Hamming counts, PR curve, bit
    statistics — cached per home, run, bits, quantizer id and :func:`stamp` (no protocol choice changes them; the
    counts inside fill on first use and are then only read)."""
    return _code_stats(home(), key, int(n_bits), f.id, stamp(f), _owner_of(f))


@st.cache_data(max_entries=256, show_spinner="scoring…")
def _score_row(home: str, key: str, n_bits: int, qid: str, top_k: int, ties: str | None, radius: int, stamp: str,
               owner: str, protocol: str = "hashviz"):
    from hashviz.session.compare import score

    f = _one(home, key, n_bits, qid, owner)
    return score(_scoring_embeddings(home, key, n_bits), f, top_k=top_k, ties=ties, radius=radius,
                 similarity=_class_similarity(home, key), protocol=protocol,
                 stats=_code_stats(home, key, n_bits, qid, stamp, owner))


def score_row(key: str, n_bits: int, f: FittedQuantizer, *, top_k: int, ties: str | None, radius: int,
              protocol: str = "hashviz") -> dict:
    """One Compare row for ``f`` under ``protocol`` (``ties``: None = the protocol's own order, else an override;
    cached per home, run, bits, quantizer id, protocol, ties, k, radius and :func:`stamp`)."""
    # the owner only matters to find a live fit: rows of stored quantizers are shared by every browser
    return _score_row(home(), key, int(n_bits), f.id, int(top_k), ties, int(radius), stamp(f), _owner_of(f),
                      protocol)


@st.cache_data(max_entries=128, show_spinner="scoring under every protocol…")
def _every_protocol(home: str, key: str, n_bits: int, qid: str, stamp: str, owner: str):
    from hashviz.retrieval.protocols import PROTOCOL_NAMES
    from hashviz.session.compare import score

    f = _one(home, key, n_bits, qid, owner)
    stats = _code_stats(home, key, n_bits, qid, stamp, owner)
    return [score(_scoring_embeddings(home, key, n_bits), f, protocol=p, stats=stats) for p in PROTOCOL_NAMES]


def every_protocol_rows(key: str, n_bits: int, f: FittedQuantizer) -> list[dict]:
    """``f``'s codes under every protocol, each at its own depth for the run's dataset family — the numbers of
    :func:`hashviz.evaluate.evaluate_protocols` from the quantizer's cached codes and counts (cached like
    :func:`score_row`; the table shows each protocol's mAP, which no k or radius changes)."""
    return _every_protocol(home(), key, int(n_bits), f.id, stamp(f), _owner_of(f))
