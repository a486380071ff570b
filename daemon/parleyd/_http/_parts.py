"""What the APIs send alike: images by URL or data: URL, arguments as JSON text, function
tools, an output format as a JSON schema, the model a request names."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from parley._errors import RequestError
from parley._types import Attachment, ToolSpec

from ._errors import HttpError

if TYPE_CHECKING:
    from .._models import Model, ModelRegistry


def image_url(url: str) -> Attachment:
    """An image given as a URL, or inline as a base64 ``data:`` URL."""
    if not url.startswith("data:"):
        return Attachment(url=url)
    header, sep, data = url[5:].partition(",")
    mime_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        raise HttpError.bad_request("an image data: URL must be base64 (data:image/png;base64,...)")
    return Attachment(mime_type=mime_type or None, content=data)


def json_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments, sent as JSON text, as the object parley keeps."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        raise HttpError.bad_request(f"tool call arguments are not JSON: {arguments[:80]!r}") from None
    if not isinstance(value, dict):
        raise HttpError.bad_request("tool call arguments must be a JSON object")
    return value


def tool_spec(name: str, description: str | None, schema: dict[str, Any] | None) -> ToolSpec:
    """A client's function tool; one given no schema takes no parameters (``ToolSpec``'s default)."""
    if schema is None:
        return ToolSpec(name=name, description=description)
    return ToolSpec(name=name, description=description, input_schema=schema)


def model_named(models: ModelRegistry, model_id: str | None) -> Model:
    """The model a request names; a 404 (or the daemon's other answer) when it serves none such."""
    try:
        return models.get(model_id)
    except RequestError as exc:
        raise HttpError.from_request(exc) from None


def output_schema(model_id: str | None, response_format: dict[str, Any] | None, models: ModelRegistry) -> dict[str, Any] | None:
    """The ``schema`` option an output format asks for (Chat's ``response_format``, the Responses
    API's ``text.format``): ``json_schema``'s schema, or any object for ``json_object``; a 400
    for a model that cannot be held to one."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_schema":
        given = response_format or {}
        schema = (given.get("json_schema") or given).get("schema")  # Chat nests it, the Responses API does not
    elif kind == "json_object":
        schema = {"type": "object"}
    else:
        raise HttpError.bad_request(f"unknown output format type {kind!r}")
    if not isinstance(schema, dict):
        raise HttpError.bad_request("a json_schema output format needs its `schema` object")
    model = model_named(models, model_id)
    if not model.capabilities.schema:
        raise HttpError.unsupported(f"model {model.id!r} cannot be held to a JSON schema")
    return schema
