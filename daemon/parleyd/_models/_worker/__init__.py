"""Model workers: native model code runs in a child process the daemon supervises.

A crash there (llama.cpp's AMX kernels, an OOM kill, ``kill -9``) ends the responses
it was running with a ``model_crashed`` error, never the daemon. ``_supervisor`` is
the daemon's side, ``_process`` the child's (``python -m parleyd._models._worker``),
``_wire`` what they say to each other.
"""

from ._supervisor import Worker, WorkerInfo, backoff, rss_bytes

__all__ = ["Worker", "WorkerInfo", "backoff", "rss_bytes"]
