"""The worker process: it loads one runner, then runs the daemon's jobs one at a time.

Started by the daemon as ``python -m parleyd._models._worker FD``, FD being its end of
a socket pair. Jobs run on the main thread; a reader thread takes the daemon's
messages, so a ``Cancel`` sets its job's flag while a token is being computed. When
the daemon's end closes (it stopped, or it died), the reader ends the process at
once: a worker never outlives its daemon.

A runner is a class taking its settings, with ``load() -> info``, ``progress() ->
int`` (tokens so far, read at a cancel) and ``run(request, cancel, stats)`` yielding
parley events; a failure it can name is a ``ModelFailure``.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from typing import Any

from .._base import ModelFailure
from ._wire import Cancel, Emitted, Finished, Job, LoadFailed, Ready, Start, frame, receive

log = logging.getLogger("parleyd.worker")

#: The runners a worker can load, by the name the daemon sends in ``Start``.
RUNNERS = {"llama": ("parleyd._models._llama", "LlamaRunner"), "llm": ("parleyd._models._llm._runner", "LlmRunner")}


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the daemon's terminal: the daemon decides
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s worker[%(process)d]: %(message)s")
    sock = socket.socket(fileno=int(argv[0]))
    start = receive(sock)
    if not isinstance(start, Start):
        return 2
    t0 = time.perf_counter()
    try:
        module, name = RUNNERS[start.runner]
        runner = getattr(importlib.import_module(module), name)(start.settings)
        info = runner.load()
    except ModelFailure as failure:
        _send(sock, LoadFailed(kind=failure.kind, message=failure.message))
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the daemon, which says it to the client
        log.exception("the %s runner failed to load", start.runner)
        _send(sock, LoadFailed(kind="model_error", message=f"{type(exc).__name__}: {exc}"))
        return 1
    _send(sock, Ready(load_s=round(time.perf_counter() - t0, 3), info=info))
    jobs: queue.Queue[Job] = queue.Queue()
    cancels: dict[int, threading.Event] = {}
    at_cancel: dict[int, int] = {}
    threading.Thread(target=_read, args=(sock, runner, jobs, cancels, at_cancel), name="worker-reader", daemon=True).start()
    while True:
        job = jobs.get()
        _run(sock, runner, job, cancels[job.id], at_cancel)
        cancels.pop(job.id, None)


def _read(sock: socket.socket, runner: Any, jobs: queue.Queue[Job], cancels: dict[int, threading.Event], at_cancel: dict[int, int]) -> None:
    try:
        while (message := receive(sock)) is not None:
            if isinstance(message, Job):
                cancels[message.id] = threading.Event()
                jobs.put(message)
            elif isinstance(message, Cancel) and (flag := cancels.get(message.id)) is not None:
                at_cancel[message.id] = runner.progress()
                flag.set()
    except Exception:  # noqa: BLE001 - a frame the worker cannot read: nothing more can be trusted
        log.exception("reading from the daemon failed")
    os._exit(0)  # the daemon closed its end: stop now, mid-token if need be


def _run(sock: socket.socket, runner: Any, job: Job, cancel: threading.Event, at_cancel: dict[int, int]) -> None:
    stats: dict[str, int] = {}
    try:
        for event in runner.run(job.request, cancel, stats):
            _send(sock, Emitted(job=job.id, event=event))
        finished = Finished(job=job.id, status="cancelled" if cancel.is_set() else "completed")
    except ModelFailure as failure:
        finished = Finished(job=job.id, status="failed", kind=failure.kind, message=failure.message)
    except Exception as exc:  # noqa: BLE001 - a model's failure is reported, the worker goes on
        log.exception("job %d failed", job.id)
        finished = Finished(job=job.id, status="failed", kind="model_error", message=f"{type(exc).__name__}: {exc}")
    stats["progress"] = runner.progress()
    if job.id in at_cancel:
        stats["progressAtCancel"] = at_cancel.pop(job.id)
    finished.stats = stats
    _send(sock, finished)


def _send(sock: socket.socket, message: Any) -> None:
    try:
        sock.sendall(frame(message))
    except OSError:  # the daemon is gone
        os._exit(0)
