"""Where the daemon's socket, token, database and config live.

``PARLEY_HOME`` puts everything under one folder (tests, portable setups);
otherwise the platform's user dirs are used. The runtime dir, which holds the socket, is
``$XDG_RUNTIME_DIR/parley`` when that variable names what the XDG spec promises (a directory of
the user's, mode 0700), else a private folder under the temp dir; a runtime folder that belongs
to another user is refused, since whoever owns it could put their own socket in its place.

Every CLI start needs the socket's path, and importing platformdirs (with the tempfile and
shutil it imports) is a tenth of a warm ``parley prompt``; so it is imported only for the data
and config dirs, and for the runtime dir off Linux, where the XDG rule is not the one above.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

APP = "parley"


def _home() -> Path | None:
    home = os.environ.get("PARLEY_HOME")
    return Path(home) if home else None


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _owned(path: Path) -> Path:
    """``path`` as a private folder of this user's: made 0700 if it is not, refused if not ours."""
    status = os.lstat(path)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a folder of this user's: parley will not put its socket there")
    if status.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _xdg_runtime_dir() -> Path | None:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    try:
        status = os.stat(xdg) if xdg else None
    except OSError:
        return None
    if status is None or not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o077:
        return None
    return Path(xdg)


def runtime_dir() -> Path:
    if home := _home():
        return _private_dir(home / "run")
    if xdg := _xdg_runtime_dir():
        if sys.platform == "linux":
            return _private_dir(xdg / APP)
        import platformdirs

        return _private_dir(Path(platformdirs.user_runtime_dir(APP)))
    import tempfile

    return _owned(_private_dir(Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"))


def data_dir() -> Path:
    if home := _home():
        return _private_dir(home / "data")
    import platformdirs

    return _private_dir(Path(platformdirs.user_data_dir(APP)))


def config_dir() -> Path:
    if home := _home():
        return _private_dir(home / "config")
    import platformdirs

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
