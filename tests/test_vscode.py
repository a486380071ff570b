"""The VS Code extension's Node suites (clients/vscode), run from the repository's one test command.

Each suite is one pytest test that runs it with npm and fails when it fails. They need
`npm ci` in clients/vscode (and Debian's `chromium` for the webview suite): .ci/run does
both. Without them the tests are skipped on a developer's machine, and fail under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "clients" / "vscode"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")


def npm(*args: str, timeout: float) -> None:
    """Runs an npm script in clients/vscode; its output is shown when it fails."""
    if shutil.which("npm") is None:
        missing("npm is not installed")
    if not (EXTENSION / "node_modules" / ".package-lock.json").exists():
        missing("clients/vscode has no node_modules: run `npm ci` there")
    env = dict(os.environ, PARLEY_BIN=os.environ.get("PARLEY_BIN") or str(Path(sys.executable).with_name("parley")), FORCE_COLOR="0")
    proc = subprocess.run(["npm", "run", "--silent", *args], cwd=EXTENSION, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"`npm run {' '.join(args)}` exited with {proc.returncode}:\n{proc.stdout[-20000:]}", pytrace=False)


@pytest.mark.timeout(300)
def test_typecheck() -> None:
    npm("typecheck", timeout=280)


@pytest.mark.timeout(600)
def test_protocol_and_state_against_the_daemon() -> None:
    if not Path(sys.executable).with_name("parley").exists() and not os.environ.get("PARLEY_BIN"):
        missing("no `parley` executable beside this Python: install the project (pip install -e .)")
    npm("test:daemon", timeout=580)


@pytest.mark.timeout(300)
def test_extension_glue_with_mocked_vscode_and_seq_handling() -> None:
    npm("test:unit", timeout=280)


@pytest.mark.timeout(300)
def test_webview_in_headless_chromium() -> None:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    npm("test:webview", timeout=280)


@pytest.mark.timeout(300)
def test_vsce_package() -> None:
    npm("package", timeout=280)
    with zipfile.ZipFile(EXTENSION / "parley-vscode.vsix") as vsix:
        names = {n.lower() for n in vsix.namelist()}  # vsce stores the readme as readme.md
    for name in ("extension/package.json", "extension/dist/extension.js", "extension/dist/webview.js", "extension/media/chat.css", "extension/readme.md", "extension/license.txt"):
        assert name in names, f"{name} missing from the .vsix: {sorted(names)}"
    assert not any("node_modules" in n or n.endswith((".ts", ".map")) for n in names), sorted(names)
