"""``GET /v1/models`` and ``/v1/models/{id}``: the daemon's models, in OpenAI's shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from parley._errors import UnknownModel
from parley._types import ModelInfo

from ._errors import HttpError, openai_error

_CREATED = 0  # the models have no creation time; OpenAI's clients require the field


def _model(info: ModelInfo) -> dict:
    return {"id": info.id, "object": "model", "created": _CREATED, "owned_by": info.provider}


async def list_models(request: Request) -> JSONResponse:
    infos = request.app.state.daemon.models.infos()
    return JSONResponse({"object": "list", "data": [_model(info) for info in infos]})


async def get_model(request: Request) -> JSONResponse:
    try:
        model = request.app.state.daemon.models.get(request.path_params["model_id"])
    except UnknownModel as exc:
        return openai_error(HttpError.from_request(exc))
    return JSONResponse(_model(model.info(default=False)))
