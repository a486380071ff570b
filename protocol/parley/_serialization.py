"""parley's messages and responses as the dicts of the ``llm`` library.

``llm`` 0.32 serializes a response as plain JSON-safe dicts (``ResponseDict``,
``MessageDict``, ``PartDict`` in ``llm/serialization.py``). Those are the same
shapes parley sends, keyed by their Python (snake_case) field names instead of
the camelCase wire names, with two differences: an attachment's ``mime_type``
is called ``type``, and an optional key that is absent (None, or False) is left
out. Both directions walk msgspec's own description of the types, so a field
added to a part in ``_types`` is carried without a change here.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from ._types import Message, PromptRecord, ResponseRecord, Usage

T = TypeVar("T")

#: Field names that ``llm`` spells differently.
_LLM_NAMES = {"mime_type": "type"}


class ResponseData(msgspec.Struct, kw_only=True):
    """``llm``'s ``ResponseDict`` as a struct: what ``Response.to_dict()`` writes."""

    model: str
    prompt: PromptRecord
    messages: list[Message]
    id: str | None = None
    usage: Usage | None = None
    datetime_utc: str | None = None

    @classmethod
    def from_record(cls, record: ResponseRecord) -> ResponseData:
        return cls(
            model=record.model,
            prompt=record.prompt,
            messages=record.messages,
            id=record.id,
            usage=record.usage,
            datetime_utc=record.created_at,
        )


def to_dict(value: Any) -> Any:
    """A struct (or a list of them) as ``llm``'s dict shape; other values as they are."""
    if isinstance(value, msgspec.Struct):
        config = value.__struct_config__
        out: dict[str, Any] = {config.tag_field: config.tag} if config.tag_field else {}
        for name in value.__struct_fields__:
            item = getattr(value, name)
            if item is not None and item is not False:
                out[_LLM_NAMES.get(name, name)] = to_dict(item)
        return out
    if isinstance(value, list):
        return [to_dict(item) for item in value]
    return value  # str, numbers, and opaque dicts (arguments, options, provider_metadata)


def from_dict(data: Any, type: type[T]) -> T:
    """The inverse of ``to_dict``: ``llm``'s dict shape as an instance of ``type``.

    Keys the type does not have are dropped (older ``llm`` versions put a
    ``role`` on every part); a missing or wrong value raises
    ``msgspec.ValidationError`` (a ``ValueError``) naming it.
    """
    return msgspec.convert(_wire_keys(data, _type_info(type)), type)  # type: ignore[arg-type]


@functools.cache
def _type_info(type: Any) -> mi.Type:
    return mi.type_info(type)


def _wire_keys(data: Any, info: mi.Type) -> Any:
    """``data`` with the keys of every struct in ``info`` renamed to their wire names."""
    if isinstance(info, mi.UnionType):
        info = next((t for t in info.types if _fits(data, t)), info)
    if isinstance(info, mi.StructType) and isinstance(data, dict):
        out = {info.tag_field: data.get(info.tag_field)} if info.tag_field else {}
        for field in info.fields:
            key = _LLM_NAMES.get(field.name, field.name)
            if key in data:
                out[field.encode_name] = _wire_keys(data[key], field.type)
        return out
    if isinstance(info, mi.ListType) and isinstance(data, list):
        return [_wire_keys(item, info.item_type) for item in data]
    return data


def _fits(data: Any, info: mi.Type) -> bool:
    """Whether ``data`` is the member ``info`` of a union (tagged structs by their tag)."""
    if isinstance(info, mi.StructType):
        return isinstance(data, dict) and (info.tag_field is None or data.get(info.tag_field) == info.tag)
    return isinstance(info, mi.ListType) and isinstance(data, list)
