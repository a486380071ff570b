"""A warm ``parley prompt`` against the ``llm`` CLI, side by side: ``prompt -m echo hi``.

    python bench/cli_warm.py [--runs 30] [--llm PATH] [--parley PATH ...]

A daemon is started in a temporary ``PARLEY_HOME`` and kept warm; each round then runs every
command once, in turn, so that a busy moment of the machine falls on all of them alike. ``llm``
needs the ``llm-echo`` plugin in its own environment (``pip install llm llm-echo``); every
``--parley`` given is measured (an editable install and a regular one, say). ``python -c pass``
is the floor: what starting the interpreter alone costs.

The commands run without ``PYTHONDONTWRITEBYTECODE``, as on a user's machine: with it, an
editable install compiles parley's sources at every start (the warm-up rounds write the
``.pyc`` files).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import parley


def start_daemon(home: Path) -> subprocess.Popen[bytes]:
    """``parley serve`` on ``PARLEY_HOME=home`` (set by the caller), once it answers."""
    (home / "config").mkdir(mode=0o700, parents=True)
    log = open(home / "daemon.log", "wb")  # noqa: SIM115 - open while the daemon runs
    daemon = subprocess.Popen([sys.executable, "-m", "parleyd", "serve"], stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            parley.connect(autostart=False, client_name="bench-probe").close()
            return daemon
        except (OSError, parley.ParleyError):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "daemon.log").read_text()) from None
            time.sleep(0.1)


@contextlib.contextmanager
def warm_daemon(prefix: str) -> Iterator[subprocess.Popen[bytes]]:
    """A daemon in a fresh temporary ``PARLEY_HOME`` (set for this process too), stopped and
    removed at the end."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["PARLEY_HOME"] = str(home)
    daemon = start_daemon(home)
    try:
        yield daemon
    finally:
        daemon.terminate()
        daemon.wait(15)
        shutil.rmtree(home, ignore_errors=True)


def _time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:  # (llm-echo answers with its prompt as JSON, parley's echo with "hi")
        raise RuntimeError(f"{command} failed: {done.stderr.decode()[-500:]}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--llm", default=shutil.which("llm"), help="the llm CLI, with llm-echo installed")
    parser.add_argument("--parley", action="append", help="a parley CLI to measure (default: the one beside this Python)")
    args = parser.parse_args()
    parleys = args.parley or [str(Path(sys.executable).with_name("parley"))]
    commands = {"python -c pass": [sys.executable, "-c", "pass"]}
    commands.update({f"parley prompt ({p})": [p, "prompt", "-m", "echo", "hi"] for p in parleys})
    if args.llm:
        commands[f"llm ({args.llm})"] = [args.llm, "-m", "echo", "hi"]

    with warm_daemon("parley-bench-cli-"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.warmup + args.runs):
            for name, command in commands.items():
                elapsed = _time(command, env)
                if round_ >= args.warmup:
                    times[name].append(elapsed)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {args.runs} rounds")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:60} median {medians[name]:7.1f} ms  mean {statistics.mean(t):7.1f}  min {min(t):7.1f}")
    llm = next((m for name, m in medians.items() if name.startswith("llm")), None)
    if llm is not None:
        for name, median in medians.items():
            if name.startswith("parley"):
                print(f"{name}: {llm / median:.1f}x faster than llm (medians)")


if __name__ == "__main__":
    main()
