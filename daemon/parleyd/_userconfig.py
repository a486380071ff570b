"""The user's ``config.toml``: endpoints, extra GGUF models, aliases and the default model.

    default_model = "smollm2"
    http = "127.0.0.1:8080"               # also serve OpenAI-compatible HTTP (parley serve --http)

    [aliases]
    fast = "gpt-4o-mini"

    [[endpoints]]
    name = "ollama"
    type = "openai"                       # or "anthropic"
    base_url = "http://127.0.0.1:11434/v1"
    api_key_env = "OLLAMA_KEY"            # or key = "<name given to `parley keys set`>"
    models = [{ id = "llama3.2", aliases = ["llama"] }]   # none: the models the server lists at GET /models
                                          # context_window = N in an entry: its window in tokens (models/list)

    [[gguf]]
    path = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"   # its id: the file name, unless `id` is given
    aliases = ["qwen"]

    [local]
    unload_after = 900        # seconds a local model may sit idle before its worker exits; 0: never
    extra_buffers = "auto"    # llama.cpp's weight repacking: "auto" (off on AMX CPUs), "on", "off"

It is validated once, when read; the CLI edits it line by line, so comments stay.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from parley._paths import config_dir


class ModelEntry(msgspec.Struct, forbid_unknown_fields=True):
    id: str  # what clients ask for
    name: str | None = None  # the upstream model name, when it differs from the id
    aliases: list[str] = []
    context_window: Annotated[int, msgspec.Meta(ge=1)] | None = None  # tokens, when known better than parley does


class Endpoint(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    type: Literal["openai", "anthropic"]
    base_url: str
    models: list[ModelEntry] = []  # empty: the models the endpoint lists (``_models._listing``)
    key: str | None = None
    api_key_env: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0


class GGUFEntry(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    id: str | None = None
    aliases: list[str] = []


class LocalSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How every local model runs (each in its own worker process)."""

    unload_after: Annotated[float, msgspec.Meta(ge=0)] = 900.0
    extra_buffers: Literal["auto", "on", "off"] = "auto"


class UserConfig(msgspec.Struct, forbid_unknown_fields=True):
    default_model: str | None = None
    http: Annotated[str, msgspec.Meta(pattern=r"^[^:]*:[0-9]+$")] | None = None  # "HOST:PORT": the daemon serves OpenAI's API there
    aliases: dict[str, str] = {}
    endpoints: list[Endpoint] = []
    gguf: list[GGUFEntry] = []
    local: LocalSettings = LocalSettings()


class ConfigError(Exception):
    """config.toml is not valid; the message says where."""


def config_path() -> Path:
    return config_dir() / "config.toml"


def load(path: Path | None = None) -> UserConfig:
    path = path or config_path()
    try:
        return msgspec.toml.decode(path.read_bytes(), type=UserConfig)
    except FileNotFoundError:
        return UserConfig()
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def set_default_model(name: str, path: Path | None = None) -> None:
    """Set ``default_model`` at the top of the file, keeping the rest as written."""
    path = path or config_path()
    text = path.read_text() if path.exists() else ""
    line = f"default_model = {json.dumps(name)}"
    pattern = re.compile(r"^default_model\s*=.*$", re.MULTILINE)
    text = pattern.sub(line, text, count=1) if pattern.search(text) else f"{line}\n{text}"
    _write_checked(path, text)


def add_gguf(gguf_path: Path, alias: str | None, path: Path | None = None) -> None:
    path = path or config_path()
    text = path.read_text() if path.exists() else ""
    table = f"\n[[gguf]]\npath = {json.dumps(str(gguf_path))}\n"
    if alias:
        table += f"aliases = [{json.dumps(alias)}]\n"
    _write_checked(path, text.rstrip("\n") + "\n" + table if text else table.lstrip("\n"))


def _write_checked(path: Path, text: str) -> None:
    """Write only a file that still loads: an edit never leaves a broken config behind."""
    try:
        msgspec.toml.decode(text.encode(), type=UserConfig)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: the change would make it invalid: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def file_stamp(path: Path) -> tuple[float, int] | None:
    """A config file's modification time and size (None: there is none): a change means re-read it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime, stat.st_size
