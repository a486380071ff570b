"""Models behind HTTP APIs, streamed over server-sent events with one pooled httpx client per endpoint.

``OpenAIChatModel`` speaks OpenAI-compatible chat completions; ``AnthropicModel`` speaks
Anthropic's Messages API. Both take explicit arguments (no config or environment is
read here) and are closed with ``await model.aclose()``.
"""

from ._errors import RetryPolicy
from ._model import HTTPModel, Timeouts
from .anthropic import AnthropicModel
from .openai import OpenAIChatModel

__all__ = ["AnthropicModel", "HTTPModel", "OpenAIChatModel", "RetryPolicy", "Timeouts"]
