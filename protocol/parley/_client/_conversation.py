"""``model.conversation()``: llm's Conversation, as a thin object over ``prompt`` with ``conversationId``.

    conversation = model.conversation()
    print(conversation.prompt("Capital of France?").text())
    print(conversation.prompt("And of Germany?").text())  # the daemon sends the model the history

The first prompt makes a parley conversation; each later one continues it (the
daemon's history is the input and output of its latest response). As in llm, a
prompt waits for the one before it to finish, so that its answer is in the history.
The tools, chain limit and hooks given to ``conversation()`` are each prompt's
defaults. ``id`` is None until the first prompt has started; set it first to
continue a stored conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._options import wire_options
from .._toolspec import ToolLike, as_tools
from .._types import ConversationsCreateParams
from ._base import CHAIN_LIMIT, AfterCall, BeforeCall, prompt_request

if TYPE_CHECKING:
    from ._async import AsyncClient, AsyncModel, AsyncResponse
    from ._sync import Model, Response

M = TypeVar("M")  # the model class
R = TypeVar("R")  # the response class


def create_params(
    *,
    model: str | None = None,
    system: str | None = None,
    options: dict[str, Any] | None = None,
    tools: Sequence[ToolLike] | None = None,
    cwd: str | None = None,
    title: str | None = None,
) -> ConversationsCreateParams:
    """The params of ``conversations/create``: of ``tools``, only the specs are stored (a tool runs
    in the client that sends it with a prompt)."""
    found = as_tools(tools)
    return ConversationsCreateParams(
        model=model,
        system=system,
        options=wire_options(options, {}),
        tools=None if found is None else [tool.spec for tool in found.values()],
        cwd=cwd,
        title=title,
    )


class BaseConversation(Generic[M, R]):
    def __init__(
        self,
        model: M,
        *,
        tools: list[ToolLike] | None = None,
        before_call: BeforeCall | None = None,
        after_call: AfterCall | None = None,
        chain_limit: int | None = None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.before_call = before_call
        self.after_call = after_call
        self.chain_limit = chain_limit
        #: The responses of this conversation, in the order they were prompted.
        self.responses: list[R] = []
        self._id: str | None = None

    @property
    def id(self) -> str | None:
        """The parley conversation's id (``conv_…``): known once the first prompt has started."""
        for response in reversed(self.responses):
            if (conversation_id := response.conversation_id) is not None:  # type: ignore[attr-defined]
                return conversation_id
        return self._id

    @id.setter
    def id(self, conversation_id: str | None) -> None:
        self._id = conversation_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} model={self.model.model_id!r} responses={len(self.responses)}>"  # type: ignore[attr-defined]

    def _turn(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A prompt's keywords, with this conversation's defaults for tools and hooks."""
        for name in ("conversation_id", "new_conversation"):
            if name in kwargs:
                raise TypeError(f"a conversation's prompts continue it: {name}= is not taken")
        defaults = {"tools": self.tools, "before_call": self.before_call, "after_call": self.after_call}
        return {**{k: v for k, v in defaults.items() if v is not None}, **kwargs}

    def _chain_limit(self, chain_limit: int | None) -> int:
        return chain_limit or self.chain_limit or CHAIN_LIMIT


class ModelConversation(BaseConversation["Model", "Response"]):
    """What ``Model.conversation()`` returns: ``prompt`` and ``chain`` continue one conversation."""

    def prompt(self, prompt: str | None = None, **kwargs: Any) -> Response:
        """As ``Model.prompt``, in this conversation; waits for the previous response to finish."""
        if self.responses:
            self.responses[-1]._finish()
        response = self.model.prompt(prompt, conversation_id=self.id, **self._turn(kwargs))
        self.responses.append(response)
        return response

    def chain(self, prompt: str | None = None, *, chain_limit: int | None = None, **kwargs: Any) -> Response:
        """As ``Model.chain``, in this conversation."""
        return self.prompt(prompt, chain_limit=self._chain_limit(chain_limit), **kwargs)


class AsyncModelConversation(BaseConversation["AsyncModel", "AsyncResponse"]):
    """What ``AsyncModel.conversation()`` returns; its responses start when first read or awaited."""

    def prompt(self, prompt: str | None = None, **kwargs: Any) -> AsyncResponse:
        """As ``AsyncModel.prompt``, in this conversation: once sent, it waits for the previous
        response to finish, then continues the conversation that response is in."""
        from ._async import AsyncResponse

        previous = self.responses[-1] if self.responses else None
        model = self.model
        params, toolbox = prompt_request(model.model_id, prompt, conversation_id=self.id, **self._turn(kwargs))

        async def connected() -> AsyncClient:
            if previous is not None:
                await previous._finish()
                params.conversation_id = previous.conversation_id  # known now that it has started
            return await model._connected()

        response = AsyncResponse.pending(connected, params, model.model_id, toolbox)
        self.responses.append(response)
        return response

    def chain(self, prompt: str | None = None, *, chain_limit: int | None = None, **kwargs: Any) -> AsyncResponse:
        """As ``AsyncModel.chain``, in this conversation."""
        return self.prompt(prompt, chain_limit=self._chain_limit(chain_limit), **kwargs)
