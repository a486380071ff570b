"""The daemon's side of a model worker: one child process per model, supervised.

A ``Worker`` starts its process on the first job, keeps it warm, and feeds it one
job at a time in the order the jobs arrived (the queue is the daemon's, so a crash
costs only the running job). The process's events reach the job's stream through
one reader task. When the process dies unasked — a segfault, the OOM killer,
``kill -9`` — the running job fails as ``model_crashed`` (retryable, its partial
output kept by the daemon as for any error), and the next job starts a fresh
process. Crashes in a row back off (2 s, 4 s … up to a minute): while a worker
backs off, its jobs fail at once and say when it will try again. A worker idle for
``unload_after`` seconds is stopped, and its memory goes back to the OS.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from parley._types import AnyEvent

from ..._clock import now
from .._base import ModelFailure
from ._wire import Cancel, Emitted, Finished, Job, LoadFailed, Ready, Start, decode_from_worker, frame, frame_length

log = logging.getLogger(__name__)

LOAD_TIMEOUT = 300.0  # seconds a worker has to load its model (a large GGUF from a slow disk)
CANCEL_GRACE = 10.0  # seconds a worker has to honour a cancel before it is killed
STOP_GRACE = 3.0  # seconds a worker has to exit once told, before it is killed
MAX_BACKOFF = 60.0

WorkerState = Literal["starting", "ready", "busy", "backing_off"]


def backoff(crashes: int) -> float:
    """Seconds before a worker that crashed ``crashes`` times in a row is started again."""
    return 0.0 if crashes <= 1 else min(2.0 ** (crashes - 1), MAX_BACKOFF)


@dataclasses.dataclass
class WorkerInfo:
    """What ``daemon/status`` shows of a worker."""

    state: WorkerState
    pid: int | None
    rss_bytes: int | None
    loaded_at: str | None
    crashes: int
    info: dict[str, Any]


class _Job:
    __slots__ = ("id", "request", "events", "finished", "cancelled")

    def __init__(self, job_id: int, request: dict[str, Any]) -> None:
        self.id = job_id
        self.request = request
        self.events: asyncio.Queue[AnyEvent | Finished | ModelFailure] = asyncio.Queue()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.cancelled = False

    def end(self, outcome: Finished | ModelFailure) -> None:
        self.events.put_nowait(outcome)
        if not self.finished.done():
            self.finished.set_result(None)


class _Process:
    """One running child: its process, its socket, what it said when it loaded."""

    def __init__(self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer
        self.ready: Ready | None = None
        self.loaded_at: str | None = None
        self.stopping = False  # the daemon asked it to go: its exit is no crash
        self.reading: asyncio.Task[None] | None = None  # held here: the loop keeps only weak references

    def send(self, message: Any) -> None:
        self.writer.write(frame(message))

    async def receive(self) -> Any:
        header = await self.reader.readexactly(4)
        return decode_from_worker(await self.reader.readexactly(frame_length(header)))


class Worker:
    """Runs ``runner`` with ``settings`` in a child process, for the model ``name``."""

    def __init__(self, name: str, runner: str, settings: dict[str, Any], *, unload_after: float | None = None) -> None:
        self.name = name
        self.runner = runner
        self.settings = settings
        self.unload_after = unload_after or None
        self.crashes = 0
        self.last_crash = ""
        self.last_finished: Finished | None = None  # the stats of the latest job, for tests and benches
        self._retry_at = 0.0
        self._ids = itertools.count(1)
        self._queue: collections.deque[_Job] = collections.deque()
        self._current: _Job | None = None
        self._proc: _Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False

    # ---- jobs ------------------------------------------------------------------

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[AnyEvent]:
        """The events of one job, once its turn comes; a failure raises ``ModelFailure``."""
        if self._closed:
            raise ModelFailure("model_error", f"{self.name}: the model was unloaded")
        job = _Job(next(self._ids), request)
        self._queue.append(job)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._serve(), name=f"worker {self.name}")
        try:
            while True:
                item = await job.events.get()
                if isinstance(item, Finished):
                    if item.status == "failed":
                        raise ModelFailure(item.kind or "model_error", f"{self.name}: {item.message}")
                    return
                if isinstance(item, ModelFailure):
                    raise item
                yield item
        finally:
            if not job.finished.done():
                self._cancel(job)

    def _cancel(self, job: _Job) -> None:
        """The stream was cancelled or closed: stop the job, queued or running."""
        job.cancelled = True
        if job is self._current and self._proc is not None:
            self._proc.send(Cancel(id=job.id))
            proc = self._proc
            asyncio.get_running_loop().call_later(CANCEL_GRACE, self._kill_if_running, proc, job)
        elif job in self._queue:
            self._queue.remove(job)

    def _kill_if_running(self, proc: _Process, job: _Job) -> None:
        if self._current is job and self._proc is proc:
            log.warning("worker %s (pid %d) ignored a cancel for %.0f s: killed", self.name, proc.process.pid, CANCEL_GRACE)
            proc.stopping = True
            proc.process.kill()

    async def _serve(self) -> None:
        """Run the queued jobs one at a time, starting the process when one needs it."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        while self._queue:
            job = self._queue.popleft()
            try:
                proc = await self._started()
            except ModelFailure as failure:
                job.end(failure)
                continue
            if job.cancelled:  # while the model loaded
                continue
            self._current = job
            proc.send(Job(id=job.id, request=job.request))
            await job.finished  # set by the reader: Finished, or the process died
            self._current = None
        if self.unload_after and self._proc is not None and not self._closed:
            self._idle = asyncio.get_running_loop().call_later(self.unload_after, self._unload_idle)

    # ---- the process -----------------------------------------------------------

    async def _started(self) -> _Process:
        if self._proc is not None and self._proc.ready is not None:
            return self._proc
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise ModelFailure(
                "model_crashed",
                f"{self.name}: the model's worker process crashed {self.crashes} times in a row ({self.last_crash});"
                f" it is started again in {wait:.0f} s",
                retryable=True,
                retry_after=round(wait, 1),
            )
        try:
            proc = self._proc = await self._spawn()
        except OSError as exc:
            log.error("cannot start a worker for %s: %s", self.name, exc)
            raise ModelFailure("model_error", f"{self.name}: cannot start its worker process: {exc}") from None
        t0 = time.perf_counter()
        try:
            first = await asyncio.wait_for(proc.receive(), LOAD_TIMEOUT)
        except asyncio.TimeoutError:
            first = LoadFailed(kind="model_error", message=f"the model did not load within {LOAD_TIMEOUT:.0f} s")
            proc.stopping = True
            proc.process.kill()
        except Exception:  # noqa: BLE001 - it died, or sent what we cannot read: a crash either way
            first = None
        if isinstance(first, Ready):
            proc.ready, proc.loaded_at = first, now()
            log.info("local model %s loaded in %.2f s by worker pid %d (%s)", self.name, time.perf_counter() - t0, proc.process.pid, _settings(first.info))
            proc.reading = asyncio.get_running_loop().create_task(self._read(proc), name=f"worker {self.name} reader")
            return proc
        self._proc = None
        await self._reap(proc)
        if isinstance(first, LoadFailed):
            log.warning("local model %s: %s", self.name, first.message)
            raise ModelFailure(first.kind, f"{self.name}: {first.message}")
        raise self._crashed(proc, "while loading")

    async def _spawn(self) -> _Process:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "parleyd._models._worker", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=2,  # native code that prints goes to the daemon's log, never into a pipe of ours
                env=worker_env(),
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 20)
        proc = _Process(process, reader, writer)
        proc.send(Start(runner=self.runner, settings=self.settings))
        return proc

    async def _read(self, proc: _Process) -> None:
        """Route the process's messages to the running job until it exits."""
        try:
            while True:
                message = await proc.receive()
                job = self._current
                if job is None or not isinstance(message, Emitted | Finished) or message.job != job.id:
                    continue  # a cancelled job's last events
                if isinstance(message, Emitted):
                    if not job.cancelled:
                        job.events.put_nowait(message.event)
                elif isinstance(message, Finished):
                    self.last_finished = message
                    self.crashes = 0
                    job.end(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - a frame we cannot read: the worker is not to be trusted
            log.exception("worker %s sent what the daemon cannot read; stopping it", self.name)
            proc.stopping = True
            proc.process.kill()
        await self._reap(proc)
        if self._proc is proc:
            self._proc = None
        job = self._current
        running = job is not None and not job.finished.done()
        if proc.stopping:
            failure = ModelFailure("model_error", f"{self.name}: the model was unloaded")
        else:
            failure = self._crashed(proc, "while generating" if running else "while idle")
        if running:
            job.end(failure)

    def _crashed(self, proc: _Process, when: str) -> ModelFailure:
        """Count a death the daemon did not ask for, and the failure it means for a job."""
        code = proc.process.returncode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        self.crashes += 1
        self.last_crash = how
        self._retry_at = time.monotonic() + backoff(self.crashes)
        log.error("worker %s (pid %d) died %s (%s); crash %d in a row", self.name, proc.process.pid, when, how, self.crashes)
        again = "the next prompt starts a new one" if backoff(self.crashes) == 0 else f"it is started again in {backoff(self.crashes):.0f} s"
        return ModelFailure("model_crashed", f"{self.name}: the model's worker process died {when} ({how}); {again}", retryable=True)

    async def _reap(self, proc: _Process) -> None:
        proc.writer.close()
        try:
            await asyncio.wait_for(proc.process.wait(), STOP_GRACE)
        except asyncio.TimeoutError:
            proc.process.kill()
            await proc.process.wait()

    def _unload_idle(self) -> None:
        self._idle = None
        proc = self._proc
        if proc is None or self._current is not None or self._queue:
            return
        log.info("local model %s idle for %.0f s: unloading (worker pid %d)", self.name, self.unload_after, proc.process.pid)
        self._stop(proc)

    def _stop(self, proc: _Process) -> None:
        """Ask the process to go: closing our end makes its reader exit."""
        proc.stopping = True
        self._proc = None
        proc.writer.close()

    # ---- life cycle and status --------------------------------------------------

    async def start(self) -> None:
        """Load the model now rather than at the first job (call it while no job runs)."""
        await self._started()

    async def idle(self) -> None:
        """Until every job submitted so far has left the worker: finished, failed or stopped."""
        while self._pump is not None and not self._pump.done():
            await asyncio.shield(self._pump)

    async def aclose(self) -> None:
        """Stop the process and fail what is still queued; the worker takes no more jobs."""
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        for job in self._queue:
            job.end(ModelFailure("model_error", f"{self.name}: the model was unloaded"))
        self._queue.clear()
        proc = self._proc
        if proc is not None:
            self._stop(proc)
            await self._reap(proc)
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    def status(self) -> WorkerInfo | None:
        """The worker as it is now; None when it has no process and is not backing off."""
        proc = self._proc
        if proc is None:
            if self._retry_at <= time.monotonic():
                return None
            return WorkerInfo("backing_off", None, None, None, self.crashes, {})
        state: WorkerState = "starting" if proc.ready is None else "busy" if self._current is not None else "ready"
        info = proc.ready.info if proc.ready is not None else {}
        return WorkerInfo(state, proc.process.pid, rss_bytes(proc.process.pid), proc.loaded_at, self.crashes, info)


def rss_bytes(pid: int | str = "self") -> int | None:
    """A process's resident memory now (Linux), or None where it cannot be read."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def worker_env() -> dict[str, str]:
    """The daemon's environment, with the paths it imports parley from first (a source checkout)."""
    import parley
    import parleyd

    roots = [str(Path(next(iter(p.__path__))).parent) for p in (parley, parleyd)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*roots, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]))
    return env


def _settings(info: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in info.items())
