"""Where the socket goes when PARLEY_HOME is not set: the XDG runtime dir only when it is private."""

from __future__ import annotations

import os

import pytest

from parley import _paths


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("PARLEY_HOME", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its answer
    return tmp_path


def test_a_private_xdg_runtime_dir_holds_the_socket(env, monkeypatch):
    xdg = env / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert _paths.socket_path() == xdg / "parley" / "parley.sock"
    assert (xdg / "parley").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_a_shared_xdg_runtime_dir_is_not_used(env, monkeypatch, mode):
    xdg = env / "shared"
    xdg.mkdir()
    xdg.chmod(mode)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert _paths.runtime_dir() == env / "tmp" / f"parley-{os.getuid()}"
    assert not (xdg / "parley").exists()


def test_the_temp_fallback_is_made_private(env, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    fallback = env / "tmp" / f"parley-{os.getuid()}"
    fallback.mkdir()
    fallback.chmod(0o755)
    assert _paths.runtime_dir() == fallback
    assert fallback.stat().st_mode & 0o777 == 0o700


def test_a_symlinked_temp_fallback_is_refused(env, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    elsewhere = env / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (env / "tmp" / f"parley-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="not a folder of this user's"):
        _paths.runtime_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_a_temp_fallback_of_another_user_is_refused(env, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    fallback = env / "tmp" / f"parley-{os.getuid()}"
    fallback.mkdir(mode=0o700)
    os.chown(fallback, 65534, 65534)
    with pytest.raises(PermissionError):
        _paths.runtime_dir()
