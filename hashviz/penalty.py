"""Penalty vs rotation: the HQ paper's central claim, tested on your data.

Schwengber et al. ("Deep Hashing via Householder Quantization", 2023) train the similarity loss with **no**
quantization penalty (λ = 0) and learn a rotation afterwards; their tables report λ = 0 + H²Q at or above the
runs that tune a penalty λ > 0 inside training and take signs. OrthoHash (Hoe et al., NeurIPS 2021) claims one
loss with no penalty weight at all. :func:`penalty_sweep` trains one head per λ and bit length (through
:func:`hashviz.pipeline.prepare`, so every head and quantizer is cached in the run store and an interrupted sweep
continues), quantizes each by sign, ITQ and HQ, scores every cell with :func:`hashviz.evaluate.evaluate` under a
protocol, and computes the headline: per bit length, the best penalised sign codes (max over λ > 0) against
λ = 0 + HQ.

The weight swept is each method's own option (``HeadLoss.quantization_option``): ``lambda_q`` for DPSH, CSQ and
SHC (the weight of ‖b − u‖² / (|u| − 1)²), ``kl_weight`` for SHREWD (its KL term pulls the embeddings onto a
binary, uniform target), and for HashNet ``beta_gamma`` — the speed γ of the continuation β_t = (1 + γt)^0.5 that
sharpens tanh(βh) towards sign(h): γ = 0 keeps β = 1 (no push to binary), larger γ pushes sooner. Methods without
such a weight (cel, orthohash, spherical, pca, lsh) are refused with a message naming those that have one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hashviz.errors import InvalidInputError
from hashviz.evaluate import Evaluation
from hashviz.quantize import quantizer_label
from hashviz.store import RunStore

DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0, 10.0)
DEFAULT_BITS: tuple[int, ...] = (16, 32, 64)
DEFAULT_QUANTIZERS: tuple[str, ...] = ("sign", "itq", "hq")
SWEEP_STAGE = "penalty_sweeps"
SWEEP_VERSION = 1
HQ_CLAIM = ("The HQ paper claims that training with no quantization penalty (λ = 0) and learning a rotation "
            "afterwards (λ = 0 + HQ) matches or beats tuning a penalty λ > 0 inside training and taking signs.")


def penalised_heads() -> dict[str, str]:
    """``{head method: the option the sweep varies}`` for every registered method that has one."""
    from hashviz.heads.losses import get_method, list_methods

    return {m: get_method(m).quantization_option for m in list_methods() if get_method(m).quantization_option}


def penalty_option(head: str) -> str:
    """The option a sweep varies for ``head`` (e.g. ``lambda_q``); a head without one → InvalidInputError."""
    from hashviz.heads.losses import get_method

    cls = get_method(head)
    if cls.quantization_option is None:
        having = ", ".join(f"{m} ({o})" for m, o in penalised_heads().items())
        why = ("it is trained without any quantization penalty by design" if cls.trainable
               else "it is training-free")
        raise InvalidInputError(f"head method {cls.name!r} has no quantization weight to sweep: {why}",
                                f"heads with one: {having}")
    return str(cls.quantization_option)


def check_lambdas(lambdas) -> tuple[float, ...]:
    try:
        vals = [float(x) for x in lambdas]
    except (TypeError, ValueError):
        raise InvalidInputError(f"λ values must be numbers, got {lambdas!r}",
                                "e.g. --lambdas 0 0.01 0.1 1 10") from None
    if not vals:
        raise InvalidInputError("no λ values given", "e.g. --lambdas 0 0.01 0.1 1 10")
    bad = [v for v in vals if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise InvalidInputError(f"λ must be finite and ≥ 0, got {bad[0]!r}", "e.g. --lambdas 0 0.01 0.1 1 10")
    return tuple(dict.fromkeys(vals))


@dataclass(frozen=True)
class PenaltySweep:
    """One head method's λ × bit length × quantizer cells (each an :class:`Evaluation`;
    λ = ``head_options[option]``)."""

    head: str
    option: str
    lambdas: tuple[float, ...]
    bit_lengths: tuple[int, ...]
    quantizers: tuple[str, ...]
    protocol: str
    dataset: str
    backbone: str
    seed: int
    cells: tuple[Evaluation, ...]
    seconds: float
    summary: str = ""
    dataset_options: Mapping = field(default_factory=dict)
    head_options: Mapping = field(default_factory=dict)   # options of every head besides the swept one
    protocol_k: int | str | None = None
    run_keys: tuple[str, ...] = ()   # the prepared run of each λ (same order as ``lambdas``)
    created: float = 0.0
    key: str = ""                     # its run-store key (stage SWEEP_STAGE) once stored

    def lam(self, cell: Evaluation) -> float:
        return float(cell.head_options[self.option])

    def cell(self, lam: float, n_bits: int, quantizer: str) -> Evaluation:
        for c in self.cells:
            if c.n_bits == n_bits and c.quantizer == quantizer and self.lam(c) == float(lam):
                return c
        raise KeyError((lam, n_bits, quantizer))

    @property
    def map_label(self) -> str:
        return self.cells[0].map_label if self.cells else f"mAP ({self.protocol})"

    def headline(self) -> list[dict]:
        """Per bit length: the best penalised sign cell (λ > 0), λ = 0 + sign / ITQ / HQ, the difference
        λ = 0 + HQ − best penalised sign and whether this run agrees with the HQ paper (difference ≥ 0)."""
        out = []
        positive = [lam for lam in self.lambdas if lam > 0]
        if 0.0 not in self.lambdas or not positive or "sign" not in self.quantizers:
            return out
        for n in self.bit_lengths:
            best = max((self.cell(lam, n, "sign") for lam in positive), key=lambda c: c.map)
            row = {"n_bits": n, "best_penalised_lambda": self.lam(best), "best_penalised_sign": best.map,
                   "zero_sign": self.cell(0.0, n, "sign").map}
            for q in ("itq", "hq"):
                if q in self.quantizers:
                    row[f"zero_{q}"] = self.cell(0.0, n, q).map
            if "zero_hq" in row:
                row["difference"] = row["zero_hq"] - row["best_penalised_sign"]
                row["agrees"] = bool(row["difference"] >= 0)
            out.append(row)
        return out

    def verdict(self) -> str:
        """One sentence: does this run agree with the HQ paper's claim?"""
        rows = [r for r in self.headline() if "agrees" in r]
        if not rows:
            return "The claim needs λ = 0, some λ > 0, sign and HQ in the sweep."
        yes = [r["n_bits"] for r in rows if r["agrees"]]
        what = (f"λ = 0 + HQ is at or above the best penalised sign codes at {len(yes)} of {len(rows)} bit lengths"
                + (f" ({', '.join(map(str, yes))} bits)" if yes and len(yes) < len(rows) else ""))
        diffs = ", ".join(f"{r['n_bits']} bits {r['difference']:+.4f}" for r in rows)
        agree = ("this run agrees" if len(yes) == len(rows) else
                 "this run does not agree" if not yes else "this run agrees only in part")
        return f"{self.head}: {what}; {agree} (λ = 0 + HQ − best penalised sign: {diffs})."

    def verdict_at(self, n_bits: int) -> str:
        """One sentence for one bit length, with its numbers: λ = 0 + HQ against the best penalised sign codes,
        and whether this run agrees with the HQ paper there."""
        rows = [r for r in self.headline() if r["n_bits"] == int(n_bits) and "agrees" in r]
        if not rows:
            return "The claim needs λ = 0, some λ > 0, sign and HQ in the sweep."
        r = rows[0]
        lam = _lam(r["best_penalised_lambda"])
        agree = ("this run agrees with the claim" if r["agrees"] else "this run does not agree with the claim")
        return (f"At {r['n_bits']} bits, λ = 0 + HQ reaches {r['zero_hq']:.4f} {self.map_label} against "
                f"{r['best_penalised_sign']:.4f} for the best penalised sign codes ({self.option} = {lam}): "
                f"{agree} (difference {r['difference']:+.4f}).")

    def to_dict(self) -> dict:
        return {"head": self.head, "option": self.option, "lambdas": list(self.lambdas),
                "bit_lengths": list(self.bit_lengths), "quantizers": list(self.quantizers), "protocol": self.protocol,
                "dataset": self.dataset, "backbone": self.backbone, "seed": self.seed, "seconds": self.seconds,
                "summary": self.summary, "dataset_options": dict(self.dataset_options),
                "head_options": dict(self.head_options),
                "protocol_k": self.protocol_k, "run_keys": list(self.run_keys), "created": self.created,
                "key": self.key, "map_label": self.map_label, "headline": self.headline(), "verdict": self.verdict(),
                "cells": [{**c.to_dict(), "lambda": self.lam(c)} for c in self.cells]}

    @classmethod
    def from_dict(cls, d: Mapping) -> PenaltySweep:
        """Rebuild from :meth:`to_dict` (the stored record)."""
        return cls(head=str(d["head"]), option=str(d["option"]), lambdas=tuple(float(x) for x in d["lambdas"]),
                   bit_lengths=tuple(int(b) for b in d["bit_lengths"]), quantizers=tuple(d["quantizers"]),
                   protocol=str(d["protocol"]), dataset=str(d["dataset"]), backbone=str(d["backbone"]),
                   seed=int(d.get("seed", 0)), cells=tuple(Evaluation.from_dict(c) for c in d["cells"]),
                   seconds=float(d.get("seconds", 0.0)), summary=str(d.get("summary", "")),
                   dataset_options=dict(d.get("dataset_options") or {}),
                   head_options=dict(d.get("head_options") or {}), protocol_k=d.get("protocol_k"),
                   run_keys=tuple(d.get("run_keys") or ()), created=float(d.get("created", 0.0)),
                   key=str(d.get("key", "")))

    def config(self) -> dict:
        """What the sweep was asked for (its run-store config: the same settings give the same key)."""
        return sweep_config(head=self.head, lambdas=self.lambdas, bit_lengths=self.bit_lengths,
                            dataset=self.dataset, backbone=self.backbone, quantizers=self.quantizers,
                            protocol=self.protocol, protocol_k=self.protocol_k, seed=self.seed,
                            dataset_options=self.dataset_options, head_options=self.head_options)


def sweep_config(*, head, lambdas, bit_lengths, dataset, backbone, quantizers, protocol, protocol_k, seed,
                 dataset_options, head_options) -> dict:
    return {"stage": SWEEP_STAGE, "version": SWEEP_VERSION, "head": str(head),
            "lambdas": [float(x) for x in lambdas], "bit_lengths": [int(b) for b in bit_lengths],
            "dataset": str(dataset), "backbone": str(backbone), "quantizers": list(quantizers),
            "protocol": str(protocol), "protocol_k": protocol_k, "seed": int(seed),
            "dataset_options": dict(dataset_options or {}), "head_options": dict(head_options or {})}


def save_sweep(sweep: PenaltySweep, store: RunStore | str | Path | None = None) -> PenaltySweep:
    """Store ``sweep`` under its settings (replacing an older record of the same settings); returns it with its
    key."""
    from dataclasses import replace

    store = store if isinstance(store, RunStore) else RunStore(store)
    cfg = sweep.config()
    sweep = replace(sweep, key=store.key(cfg), created=sweep.created or time.time())
    store.put(SWEEP_STAGE, cfg, extra={"sweep": sweep.to_dict()})
    return sweep


def stored_sweeps(store: RunStore | str | Path | None = None, *, dataset: str | None = None,
                  backbone: str | None = None, head: str | None = None, dataset_options: Mapping | None = None,
                  seed: int | None = None) -> list[PenaltySweep]:
    """The stored sweeps (``hashviz penalty``'s and the app's), newest first; each filter given must match."""
    store = store if isinstance(store, RunStore) else RunStore(store)
    out = []
    for e in store.list(SWEEP_STAGE, retries=1):
        try:
            sw = PenaltySweep.from_dict(e.extra["sweep"])
        except (KeyError, TypeError, ValueError):
            continue
        if ((dataset is not None and sw.dataset != dataset) or (backbone is not None and sw.backbone != backbone)
                or (head is not None and sw.head != head) or (seed is not None and sw.seed != int(seed))
                or (dataset_options is not None and dict(sw.dataset_options) != dict(dataset_options))):
            continue
        out.append(sw)
    return sorted(out, key=lambda sw: (sw.created, sw.key), reverse=True)


def penalty_sweep(head: str = "dpsh", lambdas: Sequence[float] = DEFAULT_LAMBDAS,
                  bit_lengths: Sequence[int] = DEFAULT_BITS, *, dataset: str = "mnist5k", backbone: str = "mnist_cnn",
                  quantizers: Sequence[str] = DEFAULT_QUANTIZERS, protocol: str = "hashviz", protocol_k=None,
                  store: RunStore | str | Path | None = None, seed: int = 0, dataset_options: Mapping | None = None,
                  head_options: Mapping | None = None,
                  progress: Callable[[float, str, int, int], object] | None = None,
                  should_stop: Callable[[], bool] | None = None, save: bool = True) -> PenaltySweep:
    """Train ``head`` once per λ (its own quantization option) and bit length, quantize, score every cell.

    ``head_options``: other options for every head of the sweep (e.g. ``{"epochs": 20}``; the swept option itself
    is refused there). ``progress(λ, stage, done, total)`` relays :func:`hashviz.pipeline.prepare`'s progress;
    ``should_stop()`` stops between batches (finished heads stay cached, so a new call continues). ``save``:
    store the finished sweep in the run store (:func:`save_sweep`; the app's Penalty page lists it).
    """
    from hashviz.heads.losses import get_method
    from hashviz.pipeline import check_bit_lengths, prepare
    from hashviz.results import score_prepared
    from hashviz.retrieval.protocols import get_protocol

    t0 = time.perf_counter()
    method = get_method(head).name
    option = penalty_option(method)
    lams = check_lambdas(lambdas)
    bits_t = check_bit_lengths(bit_lengths, head=True)
    protocol = get_protocol(protocol).name
    extra = dict(head_options or {})
    if option in extra:
        raise InvalidInputError(f"{option} is what the sweep varies; it cannot also be a head option",
                                "give its values as the λ list (--lambdas)")
    store = store if isinstance(store, RunStore) else RunStore(store)
    qnames = tuple(dict.fromkeys(str(q).strip().lower() for q in quantizers))
    cells: list[Evaluation] = []
    run_keys: list[str] = []
    summary = ""
    from hashviz.results import warm_up_metrics

    warm_up_metrics()
    for lam in lams:
        def relay(stage, done, total, lam=lam):
            if progress is not None:
                progress(lam, stage, done, total)

        res = prepare(dataset, backbone, method, bits_t, store=store, seed=seed, dataset_options=dataset_options,
                      head_options={**extra, option: lam}, quantizers=qnames, progress=relay,
                      should_stop=should_stop)
        summary = res.summary
        run_keys.append(res.key)
        cells += score_prepared(res, qnames, store, protocol=protocol, protocol_k=protocol_k)[0]
    sweep = PenaltySweep(head=method, option=option, lambdas=lams, bit_lengths=bits_t, quantizers=qnames,
                         protocol=protocol, dataset=dataset, backbone=backbone, seed=int(seed), cells=tuple(cells),
                         seconds=time.perf_counter() - t0, summary=summary,
                         dataset_options=dict(dataset_options or {}), head_options=extra, protocol_k=protocol_k,
                         run_keys=tuple(run_keys), created=time.time())
    return save_sweep(sweep, store) if save else sweep


def _f(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _lam(x: float) -> str:
    return f"{x:g}"


def markdown(sweep: PenaltySweep, *, command: str = "") -> str:
    """A section for docs/results.md: the claim, the computed headline, mAP and quantization error per
    λ × quantizer × bits, the time per cell."""
    label = sweep.map_label
    qs = sweep.quantizers
    role = (f"`{sweep.option}` (the continuation speed γ of β_t = (1 + γt)^0.5; γ = 0: no push to binary)"
            if sweep.option == "beta_gamma" else f"`{sweep.option}`")
    lines = [f"## Penalty vs rotation: {sweep.head}", ""]
    if command:
        lines += ["```", command, "```", ""]
    values = ", ".join(_lam(v) for v in sweep.lambdas)
    lines += [f"{HQ_CLAIM} Swept (λ below): {role} ∈ {{{values}}}, one head per value and bit length on "
              f"{sweep.summary or sweep.dataset}, backbone `{sweep.backbone}`, seed {sweep.seed}; "
              f"{label}; QE = quantization error of the (rotated) database embeddings. {sweep.seconds:.0f} s for "
              "this run (cached heads keep the training time of the run that trained them).", ""]
    head = sweep.headline()
    if head:
        rot = [q for q in ("itq", "hq") if q in qs]
        lines += ["| bits | best penalised sign (λ) | λ = 0 + sign | "
                  + " | ".join(f"λ = 0 + {quantizer_label(q)}" for q in rot)
                  + " | λ = 0 + HQ − best penalised |", "|---:|---:|---:|" + "---:|" * (1 + len(rot))]
        for r in head:
            cols = [_f(r.get(f"zero_{q}")) for q in rot]
            diff = r.get("difference", float("nan"))
            lines.append(f"| {r['n_bits']} | {_f(r['best_penalised_sign'])} ({_lam(r['best_penalised_lambda'])}) | "
                         f"{_f(r['zero_sign'])} | " + " | ".join(cols) + f" | {diff:+.4f} |")
        lines += ["", f"**{sweep.verdict()}**", ""]
    lines += [f"{label} and QE per λ (columns: quantizer, mAP / QE):", "",
              "| bits | λ | " + " | ".join(f"{quantizer_label(q)} mAP | QE" for q in qs)
              + " | head training (s) | cell time (s) |",
              "|---:|---:|" + "---:|---:|" * len(qs) + "---:|---:|"]
    for n in sweep.bit_lengths:
        for lam in sweep.lambdas:
            row = [sweep.cell(lam, n, q) for q in qs]
            vals = " | ".join(f"{_f(c.map)} | {_f(c.quantization_error)}" for c in row)
            cell_s = " / ".join(f"{c.cell_seconds:.2f}" for c in row)
            lines.append(f"| {n} | {_lam(lam)} | {vals} | {row[0].head_train_seconds:.2f} | {cell_s} |")
    lines.append("")
    return "\n".join(lines)
