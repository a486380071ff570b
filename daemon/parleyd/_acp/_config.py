"""A session's config options: the model (``category: "model"``) and, for models that reason, a
reasoning option (``category: "thought_level"``). Both are ``select``s, which every client shows.

The reasoning values depend on the model's provider: OpenAI's endpoints take a
``reasoningEffort`` (``minimal`` … ``high``), Anthropic's turn ``thinking`` on or
off; any model that reasons can have its reasoning hidden (``hideReasoning``:
it is still stored). ``default`` sends nothing and leaves it to the model. Until
an option is set in the session, its prompts send no ``options``, so they inherit
the conversation's (a temperature given in another client, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parley._types import ModelInfo

from ._types import ConfigOption, ConfigOptionValue
from ._wire import invalid_params

MODEL = "model"
REASONING = "reasoning"

_EFFORTS = ("minimal", "low", "medium", "high")


def _reasoning_values(model: ModelInfo) -> list[ConfigOptionValue]:
    values = [ConfigOptionValue(value="default", name="Default", description="as the model does by default")]
    if model.provider == "openai":
        values += [ConfigOptionValue(value=e, name=e.capitalize(), description=f"reasoningEffort {e}") for e in _EFFORTS]
    elif model.provider == "anthropic":
        values += [
            ConfigOptionValue(value="on", name="On", description="extended thinking"),
            ConfigOptionValue(value="off", name="Off", description="no extended thinking"),
        ]
    values.append(ConfigOptionValue(value="hidden", name="Hidden", description="reason, but do not show it (it is stored)"))
    return values


@dataclass
class SessionConfig:
    """What the options are set to; ``models`` is the daemon's list, refreshed by the session."""

    models: list[ModelInfo]
    model: str
    reasoning: str = "default"
    #: Set by ``set``: from then on each prompt sends its options, else it inherits the conversation's.
    chosen: bool = False
    _advertised: list[ConfigOption] = field(default_factory=list)

    @classmethod
    def for_model(cls, models: list[ModelInfo], name: str | None) -> SessionConfig:
        return cls(models=models, model=_pick(models, name).id)

    @property
    def info(self) -> ModelInfo:
        return _pick(self.models, self.model)

    def options(self) -> list[ConfigOption]:
        info = self.info
        result = [
            ConfigOption(
                id=MODEL,
                name="Model",
                type="select",
                category="model",
                current_value=info.id,
                options=[ConfigOptionValue(value=m.id, name=m.id, description=_describe(m)) for m in self.models],
            )
        ]
        if info.capabilities.reasoning:
            values = _reasoning_values(info)
            if self.reasoning not in {v.value for v in values}:
                self.reasoning = "default"
            result.append(
                ConfigOption(id=REASONING, name="Reasoning", type="select", category="thought_level", current_value=self.reasoning, options=values)
            )
        return result

    def set(self, config_id: str, value: str | bool) -> None:
        if not isinstance(value, str):
            raise invalid_params(f"params.value: the option {config_id!r} is a select: its value is a string")
        self._set(config_id, value)
        self.chosen = True

    def _set(self, config_id: str, value: str) -> None:
        if config_id == MODEL:
            self.model = _pick(self.models, value, strict=True).id
            self.options()  # drops a reasoning value the new model does not take
        elif config_id == REASONING and self.info.capabilities.reasoning:
            allowed = {v.value for v in _reasoning_values(self.info)}
            if value not in allowed:
                raise invalid_params(f"params.value: {value!r} is not one of {sorted(allowed)}")
            self.reasoning = value
        else:
            raise invalid_params(f"params.configId: no config option {config_id!r}")

    def changed(self) -> list[ConfigOption] | None:
        """The options, when they differ from those last advertised (``advertised``)."""
        now = self.options()
        return None if now == self._advertised else now

    def advertised(self) -> list[ConfigOption]:
        self._advertised = self.options()
        return self._advertised

    # ---- what a prompt sends ------------------------------------------------------

    def prompt_params(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        hide = False
        if self.info.capabilities.reasoning and self.reasoning != "default":
            if self.reasoning == "hidden":
                hide = True
            elif self.info.provider == "anthropic":
                options["thinking"] = self.reasoning == "on"
            else:
                options["reasoningEffort"] = self.reasoning
        params: dict[str, Any] = {"model": self.model}
        if options or self.chosen:  # untouched, a session keeps what the conversation was given elsewhere
            params["options"] = options
        if hide:
            params["hideReasoning"] = True
        return params


def _pick(models: list[ModelInfo], name: str | None, strict: bool = False) -> ModelInfo:
    for m in models:
        if name is not None and (m.id == name or name in m.aliases):
            return m
    if strict:
        raise invalid_params(f"params.value: no model {name!r}; the model option lists them")
    for m in models:
        if m.default:
            return m
    if models:
        return models[0]
    raise invalid_params("the daemon serves no model")


def _describe(m: ModelInfo) -> str:
    aliases = f" (also {', '.join(m.aliases)})" if m.aliases else ""
    window = f", {m.context_window} tokens" if getattr(m, "context_window", None) else ""
    return f"{m.provider}{window}{aliases}"
