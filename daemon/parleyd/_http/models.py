"""``GET /v1/models`` and ``/v1/models/{id}``: the daemon's models, in OpenAI's shape, or in
Anthropic's for a request with an ``anthropic-version`` header (as Anthropic's clients send).

Both APIs share the path, so the header tells them apart; errors follow it too. The list is
every model at once (``has_more: false``): a daemon serves a handful.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from parley._errors import UnknownModel
from parley._types import ModelInfo

from ._errors import HttpError, render, wants_anthropic

_CREATED = 0  # the models have no creation time; OpenAI's clients require the field
_CREATED_AT = "1970-01-01T00:00:00Z"  # the same, as Anthropic's RFC 3339 ``created_at``


def _openai_model(info: ModelInfo) -> dict:
    return {"id": info.id, "object": "model", "created": _CREATED, "owned_by": info.provider}


def _anthropic_model(info: ModelInfo) -> dict:
    return {"type": "model", "id": info.id, "display_name": info.id, "created_at": _CREATED_AT, "lifecycle": "active"}


async def list_models(request: Request) -> JSONResponse:
    infos = request.app.state.daemon.models.infos()
    if not wants_anthropic(request.url.path, request.headers):
        return JSONResponse({"object": "list", "data": [_openai_model(info) for info in infos]})
    data = [_anthropic_model(info) for info in infos]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return JSONResponse({"data": data, "has_more": False, "first_id": first, "last_id": last})


async def get_model(request: Request) -> JSONResponse:
    try:
        model = request.app.state.daemon.models.get(request.path_params["model_id"])
    except UnknownModel as exc:
        return render(request.url.path, request.headers, HttpError.from_request(exc))
    info = model.info(default=False)
    return JSONResponse(_anthropic_model(info) if wants_anthropic(request.url.path, request.headers) else _openai_model(info))
