"""Background jobs and per-session live objects, UI-free.

- :class:`PrepareJob`: runs :meth:`hashviz.session.runs.Workspace.prepare` in a daemon thread, records progress
  per stage and stops on request; pages poll it from a fragment, so navigating away does not kill the work.
- :class:`SweepJob`: the same for a penalty sweep (:func:`hashviz.session.penalty.run_sweep`), with progress per
  λ and an estimate of the time left.
- :class:`SessionObjects`: a process-wide map ``(session id, name) → object`` for things that are per user and
  mutable (a live rotation fit). Session state keeps only the names; two browser sessions never share or see
  each other's objects; entries of ended sessions are dropped.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hashviz.errors import HashvizError, StoppedError
from hashviz.progress import StageClock

log = logging.getLogger(__name__)


@dataclass
class PrepareJob:
    """One preparation in a background thread. ``stages``: stage → (done, total) in the order seen; ``clock``:
    their rates and time left (``clock.text(stage)``)."""

    params: Mapping
    home: str | None = None  # the hashviz home it prepares into (None: the current one)
    alive: Callable[[], bool] | None = None  # False once the browser session that started it has ended: stop
    stages: dict = field(default_factory=dict)
    clock: StageClock = field(default_factory=StageClock)
    status: str = "running"  # running | done | stopped | failed
    error: HashvizError | None = None
    message: str = ""
    result: object = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    log_name = "prepare"  # (a class attribute, not a field) how the log names this kind of job

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashviz-prepare", daemon=True)

    def start(self) -> PrepareJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    def join(self, timeout: float | None = None) -> PrepareJob:
        self._thread.join(timeout)
        return self

    def _should_stop(self) -> bool:
        return self._stop.is_set() or (self.alive is not None and not self.alive())

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.stages[stage] = (int(done), int(total))
        self.clock(stage, done, total)

    def _work(self):
        from hashviz.session.runs import Workspace

        return Workspace(self.home).prepare(**dict(self.params), progress=self._progress,
                                            should_stop=self._should_stop)

    def _run(self) -> None:
        try:
            self.result = self._work()
            self.status = "done"
        except StoppedError as e:
            self.status, self.error = "stopped", e
        except HashvizError as e:
            self.status, self.error = "failed", e
        except Exception as e:  # unexpected: short message for the page, the traceback to the log
            log.error("%s failed:\n%s", self.log_name, traceback.format_exc())
            # the page shows the type only: the text of an unexpected error may quote a file's content
            self.status, self.message = "failed", type(e).__name__
        finally:
            self.finished = time.time()


@dataclass
class SweepJob(PrepareJob):
    """A penalty sweep in a background thread (``params``: :func:`hashviz.session.penalty.run_sweep`'s). Stages
    are named ``λ = … · stage``; :meth:`remaining_seconds` extrapolates from the λ values finished in this job."""

    current: float | None = None       # the λ being prepared
    lambda_started: dict = field(default_factory=dict)   # λ → time its first progress call came
    log_name = "penalty sweep"

    def _work(self):
        from hashviz.session.penalty import run_sweep

        return run_sweep(self.home, self.params, progress=self._sweep_progress, should_stop=self._should_stop)

    def _sweep_progress(self, lam: float, stage: str, done: int, total: int) -> None:
        lam = float(lam)
        if lam not in self.lambda_started:
            self.lambda_started[lam] = time.time()
        self.current = lam
        self.stages[f"λ = {lam:g} · {stage}"] = (int(done), int(total))

    @property
    def lambdas(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.params.get("lambdas", ()))

    @property
    def lambdas_done(self) -> int:
        """λ values finished (every λ before the current one; all of them once the job is done)."""
        if self.status == "done":
            return len(self.lambdas)
        return max(0, len(self.lambda_started) - 1)

    def remaining_seconds(self, now: float | None = None) -> float | None:
        """Seconds left if each λ still to do takes as long as the finished ones took on average (None before
        the first λ is finished)."""
        done = self.lambdas_done
        if not self.running or done == 0 or self.current is None:
            return None
        now = time.time() if now is None else now
        per = (self.lambda_started[self.current] - self.started) / done
        left = per * (len(self.lambdas) - done) - (now - self.lambda_started[self.current])
        return max(0.0, left)


class PrepareJobs:
    """Jobs by config key: two sessions asking for the same run share one job (its result is immutable).
    ``job_class``: the kind of job this registry starts (:class:`PrepareJob` or :class:`SweepJob`)."""

    def __init__(self, job_class: type[PrepareJob] = PrepareJob) -> None:
        self._jobs: dict[str, PrepareJob] = {}
        self._lock = threading.Lock()
        self.job_class = job_class

    def start(self, key: str, params: Mapping, home: str | None = None,
              alive: Callable[[], bool] | None = None) -> PrepareJob:
        """The running job for ``key`` or a new one. ``alive``: the job stops when it returns False (work one
        browser session started for itself, e.g. importing its upload, ends with that session)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job.running:
                job = self.job_class(params, home=home, alive=alive).start()
                self._jobs[key] = job
            return job

    def get(self, key: str | None) -> PrepareJob | None:
        with self._lock:
            return self._jobs.get(key) if key else None


class SessionObjects:
    """``(session_id, name) → object``; :meth:`prune` drops sessions for which ``alive(session_id)`` is False."""

    def __init__(self, max_sessions: int = 64) -> None:
        self._items: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()
        self.max_sessions = max_sessions

    def get(self, session: str, name: str):
        with self._lock:
            return self._items.get(session, {}).get(name)

    def put(self, session: str, name: str, obj) -> None:
        with self._lock:
            self._items.setdefault(session, {})[name] = obj
            while len(self._items) > self.max_sessions:  # oldest session first (dicts keep insertion order)
                self._items.pop(next(iter(self._items)))

    def pop(self, session: str, name: str):
        with self._lock:
            return self._items.get(session, {}).pop(name, None)

    def items(self) -> list[tuple[str, object]]:
        """Every (session id, object) held."""
        with self._lock:
            return [(sid, obj) for sid, objs in self._items.items() for obj in objs.values()]

    def names(self, session: str) -> list[str]:
        with self._lock:
            return list(self._items.get(session, {}))

    def prune(self, alive: Callable[[str], bool]) -> int:
        with self._lock:
            dead = [s for s in self._items if not alive(s)]
            for s in dead:
                del self._items[s]
            return len(dead)


PREPARE_JOBS = PrepareJobs()
SWEEP_JOBS = PrepareJobs(SweepJob)
SESSION_OBJECTS = SessionObjects()
