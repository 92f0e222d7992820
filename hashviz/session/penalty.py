"""The Penalty page's logic, UI-free: the stored penalty sweeps of a run's dataset and backbone, what a new sweep
asks for (checked before it starts), the sweep itself (run by :class:`hashviz.session.jobs.SweepJob`), the rows
the page shows and how long a cell takes.

A sweep is :func:`hashviz.penalty.penalty_sweep` — the CLI's ``hashviz penalty`` — on the home's run store, so
the page and the CLI show the same stored records (stage ``penalty_sweeps``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hashviz.errors import InvalidInputError

MAX_LAMBDAS = 12


def parse_lambdas(text: str) -> tuple[float, ...]:
    """λ values typed by a user (``"0, 0.01, 0.1 1"``): finite, ≥ 0, distinct, at most :data:`MAX_LAMBDAS`."""
    from hashviz.penalty import check_lambdas

    items = [t for t in str(text).replace(",", " ").replace(";", " ").split() if t]
    vals = []
    for t in items:
        try:
            vals.append(float(t))
        except ValueError:
            raise InvalidInputError(f"λ values must be numbers; {t[:20]!r} is not one",
                                    "e.g. 0, 0.01, 0.1, 1, 10") from None
    out = check_lambdas(vals)
    if len(out) > MAX_LAMBDAS:
        raise InvalidInputError(f"{len(out)} λ values: the page runs at most {MAX_LAMBDAS} in one sweep",
                                "use fewer values, or the CLI: hashviz penalty --lambdas …")
    return out


def sweep_params(run, head: str, lambdas: Sequence[float], bit_lengths: Sequence[int], *,
                 protocol: str = "hashviz", epochs: int | None = None) -> dict:
    """The arguments of a sweep on the current run's dataset and backbone (``run``: a
    :class:`~hashviz.session.runs.RunInfo`), checked now — a head without a quantization weight, a bad λ or bit
    length is refused before anything starts."""
    from hashviz.penalty import check_lambdas, penalty_option
    from hashviz.pipeline import check_bit_lengths
    from hashviz.retrieval.protocols import get_protocol

    if run is None or run.dataset == "embeddings":
        raise InvalidInputError("a penalty sweep trains hashing heads on backbone features, and this run is an "
                                "embeddings file (no images, no backbone)",
                                "pick or prepare a run from images (Data & model), then sweep on its dataset")
    penalty_option(head)
    config = dict(run.config or {})
    return {"head": str(head), "lambdas": list(check_lambdas(lambdas)),
            "bit_lengths": list(check_bit_lengths(tuple(int(b) for b in bit_lengths), head=True)),
            "dataset": run.dataset,
            "backbone": run.backbone, "dataset_options": dict(config.get("dataset_options") or {}),
            "seed": int(run.seed), "protocol": get_protocol(protocol).name,
            "head_options": {} if epochs is None else {"epochs": int(epochs)}}


def run_sweep(home, params: Mapping, *, progress: Callable | None = None,
              should_stop: Callable[[], bool] | None = None):
    """:func:`hashviz.penalty.penalty_sweep` on ``home``'s run store with ``params`` (:func:`sweep_params`); the
    finished sweep is stored there."""
    from hashviz.penalty import penalty_sweep
    from hashviz.session.runs import Workspace

    p = dict(params)
    return penalty_sweep(p["head"], p["lambdas"], p["bit_lengths"], dataset=p["dataset"], backbone=p["backbone"],
                         protocol=p.get("protocol", "hashviz"), store=Workspace(home).store, seed=p.get("seed", 0),
                         dataset_options=p.get("dataset_options") or None, head_options=p.get("head_options") or None,
                         progress=progress, should_stop=should_stop)


def sweeps_for_run(home, run) -> list:
    """The stored sweeps on the run's dataset (same options and seed) and backbone, newest first; those of the
    run's own head method first."""
    from hashviz.penalty import stored_sweeps
    from hashviz.session.runs import Workspace

    if run is None:
        return []
    config = dict(run.config or {})
    found = stored_sweeps(Workspace(home).store, dataset=run.dataset, backbone=run.backbone, seed=run.seed,
                          dataset_options=dict(config.get("dataset_options") or {}))
    return sorted(found, key=lambda sw: sw.head != run.head)  # stable: newest first within each group


def sweep_label(sweep) -> str:
    """How a stored sweep is listed: head, λ values, bits, protocol, epochs when changed, key."""
    lams = ", ".join(f"{x:g}" for x in sweep.lambdas)
    epochs = dict(sweep.head_options).get("epochs")
    return (f"{sweep.head} · {sweep.option} ∈ {{{lams}}} · {'/'.join(map(str, sweep.bit_lengths))} bits · "
            f"{sweep.protocol}" + (f" · {epochs} epochs" if epochs else "") + f" · {sweep.key[:8]}")


def cell_rows(sweep, n_bits: int) -> list[dict]:
    """One row per λ at ``n_bits``: per quantizer its mAP (the column names the protocol) and quantization
    error, the head's training time and each cell's quantizer fit + scoring time."""
    from hashviz.quantize import quantizer_label

    rows = []
    label = sweep.map_label
    for lam in sweep.lambdas:
        cells = [sweep.cell(lam, n_bits, q) for q in sweep.quantizers]
        row = {sweep.option: lam}
        for q, c in zip(sweep.quantizers, cells):
            row[f"{quantizer_label(q)} {label}"] = c.map
        for q, c in zip(sweep.quantizers, cells):
            row[f"{quantizer_label(q)} QE"] = c.quantization_error
        row["head training (s)"] = cells[0].head_train_seconds
        for q, c in zip(sweep.quantizers, cells):
            row[f"{quantizer_label(q)} fit + scoring (s)"] = c.cell_seconds
        rows.append(row)
    return rows


@dataclass(frozen=True)
class CellTimes:
    """Seconds one cell takes: a head's training (per λ and bit length) and a quantizer's fit + scoring."""

    head_seconds: float
    quantizer_seconds: float
    n_heads: int       # how many head trainings the numbers come from
    n_cells: int

    def estimate(self, n_lambdas: int, n_bits: int, n_quantizers: int) -> float:
        """Seconds for a sweep of that size when no head is stored yet (stored ones are read back)."""
        return n_lambdas * n_bits * (self.head_seconds + n_quantizers * self.quantizer_seconds)


def cell_times(sweeps: Iterable, head: str | None = None, epochs: int | None = None) -> CellTimes | None:
    """Mean head-training and quantizer-cell times recorded in stored sweeps (of ``head`` trained for ``epochs``
    when given); None when there is nothing to go by. Times are those of the run that computed each head and
    quantizer."""
    heads, cells = {}, []
    for sw in sweeps:
        if head is not None and sw.head != head:
            continue
        if epochs is not None and dict(sw.head_options).get("epochs") != epochs:
            continue
        for c in sw.cells:
            if not math.isnan(c.head_train_seconds):
                heads[(sw.head, sw.lam(c), c.n_bits, c.seed, tuple(sorted(dict(sw.head_options).items())))] = \
                    c.head_train_seconds
            if not math.isnan(c.cell_seconds):
                cells.append(c.cell_seconds)
    if not heads and not cells:
        return None
    return CellTimes(head_seconds=sum(heads.values()) / len(heads) if heads else math.nan,
                     quantizer_seconds=sum(cells) / len(cells) if cells else math.nan, n_heads=len(heads),
                     n_cells=len(cells))


def sentence(sweep, n_bits: int) -> str:
    """What the HQ paper claims and whether this sweep agrees at ``n_bits`` — computed from its cells."""
    from hashviz.penalty import HQ_CLAIM

    return f"{HQ_CLAIM} {sweep.verdict_at(n_bits)}"


def provenance(sweep) -> dict:
    """Where every number of a sweep comes from: its settings, protocol, the prepared run of each λ."""
    from hashviz.retrieval.protocols import get_protocol

    return {"sweep": sweep.key, "head": sweep.head, "option": sweep.option, "lambdas": list(sweep.lambdas),
            "bit_lengths": list(sweep.bit_lengths), "quantizers": list(sweep.quantizers), "dataset": sweep.dataset,
            "dataset_options": dict(sweep.dataset_options), "backbone": sweep.backbone, "seed": sweep.seed,
            "head_options": dict(sweep.head_options), "protocol": sweep.protocol,
            "protocol_rules": get_protocol(sweep.protocol).describe(), "map_label": sweep.map_label,
            "runs": dict(zip((f"{x:g}" for x in sweep.lambdas), sweep.run_keys))}
