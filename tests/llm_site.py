"""llm plugins for tests, installed the way pip installs them as far as llm can tell: a
``.dist-info`` with the ``llm`` entry points, in a directory put on PYTHONPATH.

llm finds plugins by their setuptools entry points (``importlib.metadata``), so a directory
holding ``NAME-VERSION.dist-info/entry_points.txt`` beside (or pointing at) the plugin's module
makes it a plugin of every llm process, and of the daemon's discovery, given that PYTHONPATH.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "llm_plugins"
LLM_PARLEY = ROOT / "clients" / "llm-parley"


def plugin_site(site: Path, distribution: str, version: str, entry_points: dict[str, str]) -> Path:
    """Write the dist-info of ``distribution`` into ``site``, registering ``entry_points`` (name →
    module) in llm's group; returns ``site``."""
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[llm]\n" + "".join(f"{name} = {module}\n" for name, module in entry_points.items()))
    return site


def raiser_site(site: Path) -> list[Path]:
    """The PYTHONPATH entries that install tests/llm_plugins/llm_raiser.py as ``llm-raiser``."""
    return [plugin_site(site, "llm-raiser", "0.1", {"raiser": "llm_raiser"}), PLUGINS]


def llm_parley_site(site: Path) -> list[Path]:
    """The PYTHONPATH entries that install clients/llm-parley as its pyproject.toml declares it."""
    project = tomllib.loads((LLM_PARLEY / "pyproject.toml").read_text())["project"]
    return [plugin_site(site, project["name"], project["version"], project["entry-points"]["llm"]), LLM_PARLEY]


def pythonpath(*entries: Path) -> str:
    return os.pathsep.join([*map(str, entries), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])


def use_llm(monkeypatch: Any, user_dir: Path, site: list[Path]) -> None:
    """This test's own llm: its user dir, the plugins of ``site`` found by entry point (and by
    every process the test starts), and the daemon's llm plugin models switched on."""
    monkeypatch.setenv("LLM_USER_PATH", str(user_dir))
    monkeypatch.setenv("PYTHONPATH", pythonpath(*site))
    monkeypatch.delenv("LLM_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("PARLEY_LLM_PLUGINS", "1")
