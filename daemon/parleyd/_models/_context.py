"""The context windows of well-known hosted model families, for ``ModelInfo.contextWindow``.

Neither OpenAI's ``GET /v1/models`` nor an OpenAI-compatible server's usually says how many
tokens a model takes, so the families whose window is published and fixed are known here, by
the upstream model name in full (a dated snapshot included; a routing prefix such as
OpenRouter's ``openai/`` is dropped). A model not matched has no known window (null), unless
its provider's list or config.toml gives one: a missing entry is better than a wrong one.
"""

from __future__ import annotations

import re

_DATE = r"(-\d{4}-\d{2}-\d{2})?"  # OpenAI's snapshots: gpt-4o-2024-08-06
_ANTHROPIC_DATE = r"(-\d{8}|-latest)?"  # Anthropic's: claude-sonnet-4-5-20250929

#: (the upstream name in full, its window in tokens: input and output together).
KNOWN_CONTEXT_WINDOWS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(pattern), tokens)
    for pattern, tokens in [
        (rf"gpt-4o(-mini)?{_DATE}|chatgpt-4o-latest", 128_000),
        (rf"gpt-4-turbo(-preview|{_DATE})?", 128_000),
        (rf"gpt-4\.1(-mini|-nano)?{_DATE}", 1_047_576),
        (r"gpt-3\.5-turbo(-0125|-1106)?", 16_385),
        (rf"(o1|o3|o3-mini|o4-mini){_DATE}", 200_000),
        (rf"gpt-5(-mini|-nano)?{_DATE}", 400_000),
        (rf"claude-3(-5|-7)?-(haiku|sonnet|opus){_ANTHROPIC_DATE}", 200_000),
        (rf"claude-(opus|sonnet)-4(-0|-1|-5)?{_ANTHROPIC_DATE}", 200_000),
        (rf"claude-haiku-4-5{_ANTHROPIC_DATE}", 200_000),
    ]
]


def known_context_window(name: str) -> int | None:
    """The published window of the model named ``name`` upstream, if its family is known."""
    bare = name.rsplit("/", 1)[-1]
    return next((tokens for pattern, tokens in KNOWN_CONTEXT_WINDOWS if pattern.fullmatch(bare)), None)
