"""The plugin models the daemon serves: cached on disk, found again in the background.

The daemon starts with the list cached in ``llm-models.json`` (data dir) and never waits for a
plugin: discovery runs in a process of its own (``_discover``), at start when the cache is
missing, older than ``REFRESH_EVERY`` or made with other packages installed, then whenever the
installed packages change (the mtimes of the import path's directories, checked every
``CHECK_EVERY`` seconds: ``pip install`` / ``llm install`` adds a directory there) or llm's
``aliases.json`` does, and every ``REFRESH_EVERY`` (plugins such as llm-ollama list what a server
has). A failed discovery keeps the last list and logs it. Without llm installed there is
nothing to find: no plugin models, no process, no error; nor with ``PARLEY_LLM_PLUGINS=0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
import time
from pathlib import Path

import msgspec

from .._listing import REFRESH_EVERY
from ._shapes import Described

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0  # seconds between two looks at whether packages changed
DISCOVERY_TIMEOUT = 120.0  # seconds the discovery process may take (plugins import a lot)


class Cached(msgspec.Struct):
    fingerprint: list[float]
    found_at: float  # Unix time
    models: list[Described]


SWITCH = "PARLEY_LLM_PLUGINS"  # "0": serve no plugin models (a test suite's fixed model list)


def enabled() -> bool:
    """llm is installed, and plugin models are not switched off."""
    return os.environ.get(SWITCH, "1") != "0" and importlib.util.find_spec("llm") is not None


def fingerprint() -> list[float]:
    """What changes when a package is installed or removed, or llm's aliases change: cheap stats."""
    paths = [Path(p) for p in sys.path if p] + [_llm_aliases()]
    stamps = []
    for path in paths:
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return stamps


def _llm_aliases() -> Path:
    """llm's ``aliases.json``, found as llm finds its user dir (without importing llm)."""
    if user := os.environ.get("LLM_USER_PATH"):
        return Path(user) / "aliases.json"
    import platformdirs

    return Path(platformdirs.user_config_dir("io.datasette.llm", appauthor=False, roaming=True)) / "aliases.json"


class LlmPlugins:
    """The described plugin models; :attr:`version` goes up whenever they change."""

    def __init__(self, path: Path, *, every: float = REFRESH_EVERY) -> None:
        self.path = path
        self.every = every
        self.version = 0
        self.enabled = enabled()
        self._cached = _load(path) if self.enabled else None
        self._task: asyncio.Task[None] | None = None

    def models(self) -> list[Described]:
        return self._cached.models if self._cached is not None else []

    def watch(self) -> None:
        """Start the background discovery, once, when llm is installed and a loop runs."""
        if not self.enabled or self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._watch(), name="llm plugin models")

    async def _watch(self) -> None:
        while True:
            stamp = fingerprint()
            cached = self._cached
            if cached is None or cached.fingerprint != stamp or time.time() - cached.found_at > self.every:
                await self.refresh(stamp)
            await asyncio.sleep(CHECK_EVERY)

    async def refresh(self, stamp: list[float] | None = None) -> bool:
        """Discover the plugin models now; whether the list changed."""
        stamp = stamp if stamp is not None else fingerprint()
        try:
            found = await discover()
        except DiscoveryFailed as exc:
            log.warning("llm plugins: could not list their models (%s); keeping the %d listed before", exc, len(self.models()))
            self._cached = Cached(stamp, time.time(), self.models())  # not again until something changes
            return False
        changed = found != self.models()
        self._cached = Cached(stamp, time.time(), found)
        self._save()
        if changed:
            self.version += 1
            log.info("llm plugins: %d models (%s)", len(found), ", ".join(d.id for d in found) or "none")
        return changed

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(msgspec.json.encode(self._cached))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DiscoveryFailed(Exception):
    pass


async def discover() -> list[Described]:
    """Run the discovery process and read what it found."""
    from .._worker._supervisor import worker_env

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parleyd._models._llm._discover",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=2, env=worker_env(),
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), DISCOVERY_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise DiscoveryFailed(f"it took over {DISCOVERY_TIMEOUT:.0f} s") from None
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise DiscoveryFailed(f"the discovery process exited with status {process.returncode}")
    try:
        found = msgspec.json.decode(out, type=list[Described])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DiscoveryFailed(f"unreadable output: {exc}") from None
    return _unique(found)


def _unique(found: list[Described]) -> list[Described]:
    """One model per id: the first plugin to register it (as llm resolves ``-m``), the others logged."""
    seen: dict[str, Described] = {}
    for described in found:
        if described.id in seen:
            log.warning("llm plugins: %s and %s both register %r; serving %s's", seen[described.id].provider, described.provider, described.model_id, seen[described.id].provider)
            continue
        seen[described.id] = described
    return list(seen.values())


def _load(path: Path) -> Cached | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Cached)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
