"""API keys: stored 0600 in the user config dir by ``parley keys set``, or read from env vars.

A key is only ever handed to the provider that sends it upstream: it is never
logged, never sent to a client, never part of an error text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from parley._paths import config_dir

#: The env var each provider type reads when no stored key is named.
ENV_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def keys_path() -> Path:
    return config_dir() / "keys.json"


def stored_keys() -> dict[str, str]:
    try:
        data = json.loads(keys_path().read_text())
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def set_key(name: str, value: str) -> None:
    keys = stored_keys()
    keys[name] = value
    path = keys_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    os.replace(tmp, path)


def find_key(*, stored: str | None, env: str | None) -> str | None:
    """The key named ``stored`` in keys.json, else the env var ``env``."""
    if stored and (value := stored_keys().get(stored)):
        return value
    return os.environ.get(env) if env else None
