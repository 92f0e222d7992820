"""Evaluation protocols: the rules each paper's evaluator follows, as named presets.

A protocol fixes three things a published mAP silently depends on (see ``docs/metrics.md`` for the sources):

- **tie order** inside equal Hamming distances — ``"expected"`` (the exact average over random orders),
  ``"stable"`` (database index order) or ``"euclidean"`` (by the Euclidean distance of the L2-normalised
  continuous embeddings, then index);
- **depth** k of mAP@k — per dataset *family* (the published dataset whose settings apply): ``"all"``,
  ``"all_but_last"`` (DeepHash-pytorch's ``topK=-1``, which slices ``[0:-1]``) or a number;
- **queries with no relevant database item** — ``"left_out"`` of the mean (and counted) or counted as AP 0.

=============  ===========  =============================================  ===================
protocol       ties         depth (family → k)                             no relevant item
=============  ===========  =============================================  ===================
``hashviz``    expected     all                                            left out, counted
``deephash``   stable       cifar10 all but the last; nuswide/coco 5000;   AP 0
                            imagenet 1000; default all but the last
``h2q``        euclidean    5000; imagenet 1000                            AP 0
``orthohash``  stable       cifar10 all; nuswide/coco 5000;                AP 0
                            imagenet 1000; default all
=============  ===========  =============================================  ===================

The dataset registry says which family a dataset belongs to (:func:`dataset_family`); for an embeddings file
without a known dataset the preset's default applies, or pass ``protocol_k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hashviz.errors import InvalidInputError
from hashviz.validate import is_int, unknown_choice

FAMILIES = ("cifar10", "nuswide", "coco", "imagenet")
DEPTH_WORDS = ("all", "all_but_last")


@dataclass(frozen=True)
class Protocol:
    """One evaluator's rules (see the module docstring)."""

    name: str
    ties: str                                  # "expected" | "stable" | "euclidean"
    default_depth: int | str                   # "all" | "all_but_last" | k
    no_relevant: str                           # "left_out" | "zero"
    source: str
    depths: Mapping[str, int | str] = field(default_factory=dict)   # family → depth

    def depth(self, family: str | None = None) -> int | str:
        return self.depths.get(str(family or ""), self.default_depth)

    def resolve_k(self, n_database: int, family: str | None = None, protocol_k=None) -> int:
        """The depth k for a database of ``n_database`` items (``protocol_k`` overrides the preset's)."""
        depth = self.depth(family) if protocol_k is None else parse_protocol_k(protocol_k)
        return depth_to_k(depth, n_database)

    def describe(self, family: str | None = None, protocol_k=None) -> str:
        depth = self.depth(family) if protocol_k is None else parse_protocol_k(protocol_k)
        d = {"all": "mAP@all", "all_but_last": "mAP over all but the last-ranked item"}.get(depth, f"mAP@{depth}")
        ties = {"expected": "expected ties (average over random orders inside equal distances)",
                "stable": "ties in database order (stable sort)",
                "euclidean": "ties broken by the Euclidean distance of the L2-normalised embeddings"}[self.ties]
        rel = ("queries with no relevant item left out (and counted)" if self.no_relevant == "left_out"
               else "a query with no relevant item counts AP 0")
        return f"{self.name}: {d}, {ties}, {rel} — {self.source}"


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("hashviz", ties="expected", default_depth="all", no_relevant="left_out",
             source="hashviz's default (docs/metrics.md)"),
    Protocol("deephash", ties="stable", default_depth="all_but_last", no_relevant="zero",
             depths={"cifar10": "all_but_last", "nuswide": 5000, "coco": 5000, "imagenet": 1000},
             source="DeepHash-pytorch utils/tools.py CalcTopMap with a stable sort"),
    Protocol("h2q", ties="euclidean", default_depth=5000, no_relevant="zero", depths={"imagenet": 1000},
             source="the HQ authors' src/utils/eval_utils.py mAP_at_many"),
    Protocol("orthohash", ties="stable", default_depth="all", no_relevant="zero",
             depths={"cifar10": "all", "nuswide": 5000, "coco": 5000, "imagenet": 1000},
             source="OrthoHash functions/hashing.py calculate_mAP (R from configs.R), ties made stable"),
)}

PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)


def get_protocol(name) -> Protocol:
    if isinstance(name, Protocol):
        return name
    key = str(name).strip().lower()
    if key not in PROTOCOLS:
        raise unknown_choice(name, "protocol", PROTOCOL_NAMES, hint=f"choose one of: {', '.join(PROTOCOL_NAMES)} "
                             "(or 'all' where every protocol is scored)")
    return PROTOCOLS[key]


def protocol_list(names) -> tuple[Protocol, ...]:
    """Protocols from a name, ``"all"`` or a list of names (duplicates dropped, order kept)."""
    if names is None:
        return (PROTOCOLS["hashviz"],)
    if isinstance(names, str | Protocol):
        names = (names,)
    out: list[Protocol] = []
    for n in names:
        for p in (PROTOCOLS.values() if str(n).strip().lower() == "all" else (get_protocol(n),)):
            if p not in out:
                out.append(p)
    if not out:
        raise InvalidInputError("no protocol given", f"choose from: {', '.join(PROTOCOL_NAMES)} or all")
    return tuple(out)


def parse_protocol_k(value) -> int | str:
    """A depth typed by a user: ``"all"``, ``"all_but_last"`` or ``-1`` (DeepHash-pytorch's ``topK=-1``), or a
    positive integer."""
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "_")
        if text in DEPTH_WORDS:
            return text
        try:
            value = int(value.strip())
        except ValueError:
            raise InvalidInputError(f"protocol k must be a positive integer, 'all' or -1, got {value!r}",
                                    "e.g. --protocol-k 5000, --protocol-k all, or -1 (all but the last)") from None
    if not is_int(value):
        raise InvalidInputError(f"protocol k must be a positive integer, 'all' or -1, got {value!r}",
                                "e.g. protocol_k=5000")
    if int(value) == -1:
        return "all_but_last"
    if int(value) < 1:
        raise InvalidInputError(f"protocol k must be a positive integer, 'all' or -1, got {value}",
                                "e.g. protocol_k=5000")
    return int(value)


def depth_to_k(depth: int | str, n_database: int) -> int:
    if depth == "all":
        return int(n_database)
    if depth == "all_but_last":
        return max(1, int(n_database) - 1)
    return int(min(int(depth), n_database))


def dataset_family(name: str | None) -> str:
    """The family of a registered dataset name ('' when unknown or not registered)."""
    if not name:
        return ""
    from hashviz.data.registry import get_entry

    try:
        return get_entry(str(name)).family
    except InvalidInputError:
        return ""


def map_label(protocol: str, k: int, n_database: int, ties: str | None = None) -> str:
    """``"mAP@all (hashviz)"``, ``"mAP@3999 (deephash)"``…: every mAP shown names its protocol; a tie order other
    than the protocol's own is added (``"mAP@all (hashviz, ties stable)"``)."""
    p = get_protocol(protocol)
    depth = "all" if k >= n_database else str(k)
    extra = "" if ties in (None, p.ties, "secondary") else f", ties {ties}"
    return f"mAP@{depth} ({p.name}{extra})"
