"""Where the daemon's socket, token, database and config live.

``PARLEY_HOME`` puts everything under one folder (tests, portable setups);
otherwise the platform's user dirs are used. The runtime dir falls back to a
private folder under the temp dir when ``XDG_RUNTIME_DIR`` does not exist.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

APP = "parley"


def _home() -> Path | None:
    home = os.environ.get("PARLEY_HOME")
    return Path(home) if home else None


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def runtime_dir() -> Path:
    if home := _home():
        return _private_dir(home / "run")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return _private_dir(Path(platformdirs.user_runtime_dir(APP)))
    return _private_dir(Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}")


def data_dir() -> Path:
    if home := _home():
        return _private_dir(home / "data")
    return _private_dir(Path(platformdirs.user_data_dir(APP)))


def config_dir() -> Path:
    if home := _home():
        return _private_dir(home / "config")
    return _private_dir(Path(platformdirs.user_config_dir(APP)))


def socket_path() -> Path:
    return runtime_dir() / "parley.sock"


def token_path() -> Path:
    """The token TCP and WebSocket clients must send; written 0600 beside the socket."""
    return socket_path().with_suffix(".token")


def read_token() -> str | None:
    try:
        return token_path().read_text().strip()
    except FileNotFoundError:
        return None
