"""The models a daemon serves, found by id or alias."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from parley._errors import InvalidParams, UnknownModel
from parley._types import ModelInfo

from ._base import Model
from ._structured import check_schema_option


class ModelRegistry:
    def __init__(self, models: list[Model], default: str) -> None:
        self._models = {m.id: m for m in models}
        self._names = {name: m for m in models for name in (m.id, *m.aliases)}
        self.default = self.get(default)

    def get(self, name: str | None) -> Model:
        if name is None:
            return self.default
        try:
            return self._names[name]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r}; `parley models` lists them", data={"model": name}) from None

    def options(self, model: Model, options: dict[str, Any] | None) -> msgspec.Struct:
        """The options, validated against the model's Options struct (-32602 naming the bad one),
        and a ``schema`` option, whatever the model, checked for being a JSON schema."""
        try:
            parsed = model.parse_options(options or {})
            check_schema_option(parsed)
        except msgspec.ValidationError as exc:
            raise InvalidParams(f"invalid options for model {model.id!r}: {_at(exc, 'options')}") from None
        except ValueError as exc:
            raise InvalidParams(f"invalid options for model {model.id!r}: {exc}") from None
        return parsed

    def __iter__(self) -> Iterator[Model]:
        return iter(self._models.values())

    def infos(self) -> list[ModelInfo]:
        return [m.info(default=m is self.default) for m in self._models.values()]


def _at(exc: msgspec.ValidationError, root: str) -> str:
    """msgspec's message with its `$` path rooted at the param's name."""
    return str(exc).replace("`$", f"`{root}", 1).replace("Object contains unknown field", "unknown option")
