"""``parley status``: is the daemon running, and what is it doing."""

from __future__ import annotations

import argparse

import parley


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the running daemon: pid, socket, uptime, connections, model workers")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with parley.connect(autostart=False, client_name="parley-cli") as client:
        status = client.status()
    print(f"parleyd {status.version}, pid {status.pid}")
    print(f"socket:      {status.socket}")
    print(f"uptime:      {_duration(status.uptime_s)}")
    print(f"connections: {status.connections} (this one included)")
    print(f"running:     {status.running_responses} response(s)")
    print(f"memory:      {_size(status.rss_bytes)}")
    if not status.workers:
        print("workers:     none (a local model starts one at its first prompt)")
    for worker in status.workers:
        loaded = f", loaded {worker.loaded_at}" if worker.loaded_at else ""
        crashes = f", {worker.crashes} crash(es) in a row" if worker.crashes else ""
        print(f"worker:      {worker.model}: {worker.state}, pid {worker.pid or '-'}, {_size(worker.rss_bytes)}{loaded}{crashes}")
    return 0


def _size(rss: int | None) -> str:
    return "?" if rss is None else f"{rss / 2**20:.0f} MiB"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s" if minutes else f"{seconds:.1f}s"
