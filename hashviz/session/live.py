"""Live rotation training, UI-free: advance a quantizer's ``fit_steps`` a few steps at a time, record a curve,
score mAP on a fixed probe subset every few steps, checkpoint curve and rotation.

The app's rotation page keeps one :class:`LiveRotation` per browser session (see :mod:`hashviz.ui.training`)
and calls :meth:`LiveRotation.advance` from an ``st.fragment(run_every=…)`` tick: each tick runs steps for a
small time budget and returns, so the page stays responsive and a Stop toggle outside the fragment works.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from hashviz.embeddings import Embeddings
from hashviz.quantize.base import Quantizer

PROBE_QUERIES = 250  # fixed, seeded subset of the query split used for live mAP
PROBE_SHARE = 0.1  # share of a core the probe may take: the next score waits at least 1 / PROBE_SHARE × its cost


@dataclass(frozen=True)
class OptionSpec:
    """One setting of a live fit as the Rotation page offers it: ``kind`` "choice" (``choices``) or "int"/"float"
    (``lo``…``hi``, ``step``); ``zero_is_none``: 0 means "not set" (full batch)."""

    name: str
    label: str
    kind: str
    default: object
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: tuple = ()
    help: str = ""
    zero_is_none: bool = False


LIVE_QUANTIZERS: dict[str, str] = {"hq": "HQ (Householder, gradient steps)", "itq": "ITQ (alternating SVD)",
                                   "random": "random search"}
LIVE_OPTIONS: dict[str, tuple[OptionSpec, ...]] = {
    "hq": (OptionSpec("loss", "Loss", "choice", "l2", choices=("l2", "l1", "bit_var", "min_entry"),
                      help="l2: mean (Z − sgn Z)², the paper's main setting"),
           OptionSpec("lr", "Learning rate", "float", 0.01, 1e-4, 1.0),
           OptionSpec("batch_size", "Batch size (0 = full batch)", "int", 0, 0, 100_000, 128, zero_is_none=True),
           OptionSpec("steps", "Steps", "int", 300, 10, 50_000, 50)),
    "itq": (OptionSpec("n_iter", "Iterations", "int", 50, 1, 500),),
    "random": (OptionSpec("steps", "Steps", "int", 300, 10, 50_000, 50),),
}


def next_step_budget(period: float, budget: float, overhead: float | None = None, *, target: float = 0.4,
                     lo: float = 0.08, hi: float = 0.3) -> tuple[float, float]:
    """(seconds of fitting for the next tick, the smoothed overhead) of a page that fits then draws once a tick.

    ``period``: seconds since the last tick began; ``budget``: the seconds that tick fitted; ``overhead``: the
    smoothed estimate so far (None at first). The rest of a period (drawing, the browser, the timer) is the
    overhead; the next tick fits for what is left of ``target`` seconds after it, within [``lo``, ``hi``], so
    the chart still updates about 1 / ``target`` times a second and the fit gets the rest instead of a fixed
    small slice. A period over 4 × ``target`` (the page was idle) resets to ``lo``."""
    if period <= 0 or period > 4 * target:
        return lo, overhead if overhead is not None else target - lo
    seen = max(0.0, period - budget)
    overhead = seen if overhead is None else 0.5 * overhead + 0.5 * seen
    return min(hi, max(lo, target - overhead)), overhead


def fit_label(name: str, options: Mapping) -> str:
    """A live fit's name from its settings, e.g. "HQ-l2 · lr 0.01 · full batch · 300 steps" (two fits with other
    settings never share a name; the same settings twice get " #2" from :func:`unique_name`)."""
    from hashviz.quantize import quantizer_label

    o = dict(options)
    if name == "hq":
        batch = o.get("batch_size")
        parts = [f"HQ-{o.get('loss', 'l2')}"]
        if o.get("lr") is not None:
            parts.append(f"lr {float(o['lr']):g}")
        parts.append("full batch" if not batch else f"batch {int(batch)}")
        if o.get("steps") is not None:
            parts.append(f"{int(o['steps'])} steps")
        return " · ".join(parts)
    if name == "itq":
        return f"ITQ · {int(o.get('n_iter', 50))} iterations"
    if name == "random":
        return f"random search · {int(o.get('steps', 800))} steps"
    return quantizer_label(name)


def unique_name(base: str, taken) -> str:
    """``base``, or ``base #2``, ``base #3``… — the first not in ``taken``."""
    taken = set(taken)
    if base not in taken:
        return base
    k = 2
    while f"{base} #{k}" in taken:
        k += 1
    return f"{base} #{k}"


def new_fit_id() -> str:
    """A fresh id for a live fit (its store entry): a new Start never overwrites an earlier fit."""
    import uuid

    return uuid.uuid4().hex[:16]


def probe_indices(emb: Embeddings, n_queries: int = PROBE_QUERIES, seed: int = 0) -> np.ndarray:
    """Row indices (into ``emb.part("query")``) of a fixed, seeded probe subset of the queries."""
    nq = int(emb.mask("query").sum())
    if nq <= n_queries:
        return np.arange(nq)
    return np.sort(np.random.default_rng(seed).choice(nq, size=n_queries, replace=False))


@dataclass(frozen=True)
class Probe:
    """The fixed probe of a live fit: ``queries`` (rows of the query split) against the whole database.

    ``q_z`` and ``db_z`` are validated once (float32, C-contiguous, finite) when the probe is built, so
    :meth:`score` encodes them with the quantizer's rotation and mean only — the codes
    ``pack((X - mean) @ R >= 0)`` of :meth:`hashviz.quantize.base.BaseQuantizer.encode`, without validating and
    copying 59,000 rows again at every score."""

    q_z: np.ndarray
    q_labels: np.ndarray
    db_z: np.ndarray
    db_labels: np.ndarray

    def __post_init__(self) -> None:
        ok = all(isinstance(z, np.ndarray) and z.dtype == np.float32 and z.flags.c_contiguous and z.ndim == 2
                 and np.isfinite(z).all() for z in (self.q_z, self.db_z))
        object.__setattr__(self, "_validated", ok)  # else every score takes the quantizer's own (checking) path

    @classmethod
    def of(cls, emb: Embeddings, rows: np.ndarray) -> Probe:
        q, db = emb.part("query"), emb.part("database")
        return cls(_rows32(q.z[rows]), q.labels[rows], _rows32(db.z), db.labels)

    def codes(self, quantizer) -> tuple[np.ndarray, np.ndarray]:
        """(query codes, database codes) of ``quantizer`` — equal to ``quantizer.encode`` of each."""
        from hashviz.codes import encode as pack_signs
        from hashviz.quantize.base import BaseQuantizer

        cls = type(quantizer)
        if not (self._validated and isinstance(quantizer, BaseQuantizer) and cls.encode is BaseQuantizer.encode
                and cls.transform is BaseQuantizer.transform and self.q_z.shape[1] == quantizer.n_bits):
            return quantizer.encode(self.q_z), quantizer.encode(self.db_z)
        state = quantizer.state()
        R = state["rotation"].astype(np.float32)
        mean = state["mean"]
        shift = mean.astype(np.float32) if np.any(mean) else None

        def encode(X: np.ndarray) -> np.ndarray:    # BaseQuantizer.transform, then encode, on validated rows
            if shift is not None:
                X = X - shift
            return pack_signs((X @ R).astype(np.float32, copy=False))

        return encode(self.q_z), encode(self.db_z)

    def score(self, quantizer, *, ties: str = "expected") -> float:
        from hashviz.retrieval.metrics import mean_average_precision

        q_codes, db_codes = self.codes(quantizer)
        return float(mean_average_precision(q_codes, db_codes, self.q_labels, self.db_labels, ties=ties))


def _rows32(z: np.ndarray) -> np.ndarray:
    """``z`` as the quantizers validate it (float32, C-contiguous); NaN or infinite values are left for
    ``encode`` to reject (:meth:`Probe.codes` then takes the quantizer's own path)."""
    return np.ascontiguousarray(np.asarray(z, dtype=np.float32))


def probe_map(emb: Embeddings, quantizer, probe: np.ndarray, *, ties: str = "expected") -> float:
    """mAP@all of the probe queries against the whole database with ``quantizer``'s codes."""
    return Probe.of(emb, probe).score(quantizer, ties=ties)


def _snapshot(quantizer: Quantizer) -> Quantizer:
    """A sign quantizer holding ``quantizer``'s current rotation and mean (safe to score in another thread)."""
    from hashviz.quantize import make_quantizer

    state = quantizer.state()
    return make_quantizer("sign", state["rotation"].shape[0]).set_rotation(**state)


@dataclass
class LiveRotation:
    """One live fit of quantizer ``name`` on the train split of ``emb``.

    ``curve``: dict rows ``step, epoch, loss, quantization_error`` (+ ``map`` at the first step, at steps that
    are multiples of ``map_every`` — but at most once per ``map_min_seconds``, or per 10× the last score's cost
    when that is longer (:attr:`map_gap_seconds`), so a fast fit does not spend its time scoring — and at the
    end). With ``background_probe`` the probe mAP of a step is computed in a
    worker thread while the fit goes on and lands in that step's row when ready (one at a time), so scoring a big
    database never stalls the chart. ``status``: ``"ready"``, ``"running"``, ``"stopped"``, ``"done"``, or
    ``"saved"`` (shown from a checkpoint). ``checkpoint(self)`` is called when the fit ends and while it runs at
    most every ``checkpoint_seconds`` — or every 20× the last checkpoint's cost when that is longer (the curve
    grows); ``checkpoint_error`` holds the last failure to save (None once one succeeds).

    :meth:`resume` continues a stopped fit exactly: the fit is deterministic given its settings, so its first
    ``n`` steps are replayed (not recorded, a few thousand steps a second) and training goes on from step ``n`` as
    if it had never stopped."""

    emb: Embeddings
    name: str = "hq"
    options: Mapping = field(default_factory=dict)
    map_every: int = 10
    map_min_seconds: float = 0.25
    probe_queries: int = PROBE_QUERIES
    seed: int = 0
    checkpoint: Callable[[LiveRotation], None] | None = None
    checkpoint_seconds: float = 1.0
    curve: list[dict] = field(default_factory=list)
    status: str = "ready"
    quantizer: Quantizer | None = None
    rotation: np.ndarray | None = None
    steps_per_second: float = 0.0
    label: str = ""
    fit_id: str = ""
    background_probe: bool = False
    checkpoint_error: str | None = None
    shared: bool = False  # shown to every session viewing the run (else only to its owner)
    created: float = 0.0
    saved_status: str = ""  # the status its checkpoint had, for a fit shown from disk
    clock: Callable[[], float] = time.perf_counter  # seconds; the pacing of probes and checkpoints reads it

    def __post_init__(self) -> None:
        self.probe = probe_indices(self.emb, self.probe_queries, self.seed)
        self._probe = Probe.of(self.emb, self.probe)
        self._it = None
        self._last_checkpoint = 0.0
        self._checkpoint_cost = 0.0
        self._last_map = -float("inf")
        self._fit_seconds = 0.0
        self._skip = 0  # steps still to replay after resume()
        self._pool = None
        self._pending = None  # (curve row, future) of the probe being scored in the background
        self._probe_cost = 0.0  # seconds the last probe score took
        self._sample_rows: dict[tuple[int, int], np.ndarray] = {}

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def _begin(self):
        from hashviz.quantize import make_quantizer

        self.quantizer = make_quantizer(self.name, self.emb.dim, **dict(self.options))
        train = self.emb.part("train")
        y = train.labels if self.quantizer.needs_labels else None
        self._it = self.quantizer.fit_steps(train.z, y)  # validates now, sets the initial rotation
        self.rotation = np.asarray(self.quantizer.rotation_, dtype=np.float64)
        return train

    def start(self) -> LiveRotation:
        from hashviz.retrieval.metrics import quantization_error

        train = self._begin()
        self.curve = [{"step": 0, "epoch": 0.0, "loss": None,
                       "quantization_error": quantization_error(self.quantizer.transform(train.z)),
                       "map": self._timed_score(self.quantizer)}]
        self.status = "running"
        self._fit_seconds = 0.0
        self._skip = 0
        return self

    def resume(self, curve: list[dict]) -> LiveRotation:
        """Continue a stopped fit whose saved ``curve`` ends at step n: replay n steps, then go on."""
        self._begin()
        self.curve = [dict(r) for r in curve]
        self._skip = self.n_steps
        self.status = "running"
        return self

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def replaying(self) -> int:
        """Steps still to replay before a resumed fit goes on (0 otherwise)."""
        return self._skip

    @property
    def n_steps(self) -> int:
        return int(self.curve[-1]["step"]) if self.curve else 0

    def _collect_probe(self, wait: bool = False) -> None:
        if self._pending is None:
            return
        row, future = self._pending
        if wait or future.done():
            self._pending = None
            row["map"] = float(future.result())

    def _score(self, row: dict) -> None:
        if not self.background_probe:
            row["map"] = self._timed_score(self.quantizer)
            return
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hashviz-probe")
        self._pending = (row, self._pool.submit(self._timed_score, _snapshot(self.quantizer)))

    def _timed_score(self, quantizer) -> float:
        t0 = self.clock()
        value = self._probe.score(quantizer)
        self._probe_cost = self.clock() - t0
        return value

    @property
    def map_gap_seconds(self) -> float:
        """Least time between two probe scores: ``map_min_seconds``, or the last score's cost divided by
        :data:`PROBE_SHARE` when that is longer (a slow probe — a big database, a loaded machine — then takes
        at most that share of the machine from the fit). ``map_min_seconds`` 0 paces nothing: every multiple of
        ``map_every`` is scored."""
        if self.map_min_seconds <= 0:
            return 0.0
        return max(self.map_min_seconds, self._probe_cost / PROBE_SHARE)

    def advance(self, *, max_steps: int | None = None, max_seconds: float = 0.25) -> int:
        """Run fit steps until ``max_steps`` or ``max_seconds``; returns how many ran (0 when not running).
        A resumed fit first replays its saved steps (they count as run, and are not recorded again)."""
        if not self.running or self._it is None:
            return 0
        t0 = self.clock()
        ran = 0
        self._collect_probe()
        while True:
            try:
                st = next(self._it)
            except StopIteration:
                self._finish("done")
                break
            ran += 1
            if self._skip:
                self._skip -= 1
            else:
                row = {"step": int(st.step), "epoch": float(st.epoch), "loss": float(st.loss),
                       "quantization_error": float(st.quantization_error)}
                self.curve.append(row)
                if self.map_every and st.step % self.map_every == 0 and self._pending is None and (
                        self.clock() - self._last_map >= self.map_gap_seconds):
                    self._last_map = self.clock()
                    self._score(row)
            if (max_steps is not None and ran >= max_steps) or self.clock() - t0 >= max_seconds:
                break
        self._collect_probe()
        dt = self.clock() - t0
        self._fit_seconds += dt
        if ran and dt > 0:
            self.steps_per_second = ran / dt
        self.rotation = np.asarray(self.quantizer.rotation_, dtype=np.float64)
        every = max(self.checkpoint_seconds, 20 * self._checkpoint_cost)
        if self.running and not self._skip and self.clock() - self._last_checkpoint >= every:
            self._save()
        return ran

    def stop(self) -> None:
        if self.running:
            self._finish("stopped")

    def _finish(self, status: str) -> None:
        self.status = status
        self._it = None
        self._skip = 0
        self._collect_probe(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self.quantizer is not None:
            self.rotation = np.asarray(self.quantizer.rotation_, dtype=np.float64)
            if self.curve and self.curve[-1].get("map") is None:
                self.curve[-1]["map"] = self._timed_score(self.quantizer)
        self._save()

    def _save(self) -> None:
        t0 = self.clock()
        if self.checkpoint is not None:
            try:
                self.checkpoint(self)
                self.checkpoint_error = None
            except Exception as e:  # a failed checkpoint must not stop the fit; the next one tries again
                from hashviz.errors import HashvizError

                self.checkpoint_error = e.message if isinstance(e, HashvizError) else f"{type(e).__name__}: {e}"
        self._last_checkpoint = self.clock()
        self._checkpoint_cost = self._last_checkpoint - t0

    # ---- restore from a checkpoint ------------------------------------------------------------------------
    def restore(self, curve: list[dict], rotation: np.ndarray, status: str = "saved",
                mean: np.ndarray | None = None) -> LiveRotation:
        """Show a saved curve and rotation (nothing trains; :meth:`resume` continues it)."""
        from hashviz.quantize import make_quantizer

        self.curve = [dict(r) for r in curve]
        self.quantizer = make_quantizer("sign", self.emb.dim).set_rotation(rotation, mean)
        self.rotation = np.asarray(rotation, dtype=np.float64)
        self.status = status
        self._it = None
        return self

    # ---- views --------------------------------------------------------------------------------------------
    def fitted(self):
        """A quantizer with the current rotation (for encoding), or ``None`` before :meth:`start`."""
        if self.rotation is None:
            return None
        from hashviz.quantize import make_quantizer

        return make_quantizer("sign", self.emb.dim).set_rotation(self.rotation, self.quantizer.state()["mean"])

    def rotated_sample(self, n: int = 2000, rotation: np.ndarray | None = None) -> np.ndarray:
        """Rotated, rescaled (norm √n_bits) coordinates of up to ``n`` database rows (for the histogram);
        ``rotation`` overrides the current one (e.g. the identity for the "before" view)."""
        from hashviz.quantize.base import sphere_rows

        db = self._probe.db_z
        rows = self._rows(n, 0, len(db), lambda rng: rng.choice(len(db), n, replace=False))
        R = rotation if rotation is not None else np.eye(self.emb.dim) if self.rotation is None else self.rotation
        return sphere_rows((db[rows] @ R).astype(np.float32))

    def balance_sample(self, n: int = 20_000) -> np.ndarray:
        """Up to ``n`` database rows (seeded) for the bit-balance view."""
        db = self._probe.db_z
        if len(db) <= n:
            return db
        return db[self._rows(n, 1, len(db), lambda rng: np.sort(rng.choice(len(db), n, replace=False)))]

    def _rows(self, n: int, seed: int, total: int, draw) -> np.ndarray:
        """The seeded sample rows of a view, drawn once (the same rows every redraw)."""
        if total <= n:
            return np.arange(total)
        if (n, seed) not in self._sample_rows:
            self._sample_rows[(n, seed)] = draw(np.random.default_rng(seed))
        return self._sample_rows[(n, seed)]

    def summary(self) -> dict:
        last = self.curve[-1] if self.curve else {}
        maps = [r["map"] for r in self.curve if r.get("map") is not None]
        return {"status": self.status, "step": self.n_steps, "loss": last.get("loss"),
                "quantization_error": last.get("quantization_error"), "map": maps[-1] if maps else None,
                "steps_per_second": self.steps_per_second, "fit_seconds": self._fit_seconds,
                "replaying": self._skip}


def warm_up_fitting() -> None:
    """Import torch and run a few HQ steps and one mAP on tiny data, so the first Start in a fresh server
    does not pay those one-off costs (called from the app's background warm-up thread)."""
    from hashviz.quantize import make_quantizer
    from hashviz.retrieval.metrics import mean_average_precision

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8)).astype(np.float32)
    q = make_quantizer("hq", 8, steps=3)
    for _ in q.fit_steps(X):
        pass
    codes = q.encode(X)
    mean_average_precision(codes, codes, np.arange(64) % 4, np.arange(64) % 4)
