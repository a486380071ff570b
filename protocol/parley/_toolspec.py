"""Python functions as tools: a ``ToolSpec`` from the signature, and calling the function back.

    def add(a: int, b: int = 0) -> int:
        '''Add two numbers.'''
        return a + b

    Tool.function(add).spec  # ToolSpec(name="add", description="Add two numbers.", input_schema={...})

The JSON schema comes from msgspec: the parameters become the fields of a struct
(annotations, defaults), so ``Literal``, lists, optional arguments, dataclasses and
msgspec Structs are described as msgspec describes them, and the model's arguments
are converted back with the same struct before the call: a dataclass argument
arrives as a dataclass.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ._types import ToolSpec

__all__ = ["CancelToolCall", "Tool", "ToolLike", "as_tools"]


class CancelToolCall(Exception):
    """Raise it in ``before_call`` to refuse a call: the model gets a result whose ``exception`` says so."""


_EMPTY = inspect.Parameter.empty
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclasses.dataclass(eq=False)
class Tool:
    """A tool the model may call: its ``spec`` (what the daemon and the model see) and its code.

    ``implementation`` is None for a tool whose code lives elsewhere (declared from a bare
    ``ToolSpec``): calling it is then answered by ``client.tool_handler``, if any.
    """

    spec: ToolSpec
    implementation: Callable[..., Any] | None = None
    _arguments: type[msgspec.Struct] | None = dataclasses.field(default=None, repr=False)
    _positional: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str | None:
        return self.spec.description

    @property
    def is_async(self) -> bool:
        return self.implementation is not None and inspect.iscoroutinefunction(self.implementation)

    @classmethod
    def function(
        cls, function: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool from a typed function: its name, its docstring's first paragraph, a schema of its parameters."""
        name = name or getattr(function, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError("a tool from a lambda needs a name: Tool.function(fn, name=...)")
        arguments, positional = _arguments_struct(function, name)
        spec = ToolSpec(name=name, description=description or _summary(function), input_schema=struct_schema(arguments))
        return cls(spec=spec, implementation=function, _arguments=arguments, _positional=positional)

    def call(self, arguments: dict[str, Any]) -> Any:
        """Call the function with the model's arguments, converted to its parameter types.

        Raises ``msgspec.ValidationError`` when they do not fit the schema; an async
        function returns its coroutine.
        """
        if self.implementation is None or self._arguments is None:
            raise TypeError(f"tool {self.name!r} has no Python implementation in this client")
        converted = msgspec.convert(arguments, self._arguments, strict=False)
        values = {f: getattr(converted, f) for f in self._arguments.__struct_fields__}
        args = [values.pop(p) for p in self._positional]
        return self.implementation(*args, **values)


class Toolbox:
    """llm's ``Toolbox``: a class whose public methods are tools, named ``<Class>_<method>``, so
    that the tools of one task share their state in the instance::

        class Memory(parley.Toolbox):
            def __init__(self):
                self.notes = {}

            def remember(self, key: str, value: str) -> str:
                "Remember a value."
                self.notes[key] = value
                return "ok"

        model.chain("Remember that x is 1", tools=[Memory()])

    ``add_tool`` adds a function (``pass_self=True`` binds it as a method); ``prepare()``, if
    overridden, runs once, before the toolbox's tools are first listed.
    """

    _blocked = frozenset({"tools", "add_tool", "prepare", "prepare_async"})

    def prepare(self) -> None:
        """Override for set-up (``add_tool`` calls, say) before the toolbox is first used."""

    async def prepare_async(self) -> None:
        """llm's async set-up hook; parley's async client calls ``prepare()`` as the sync one does."""

    def add_tool(self, tool: Tool | Callable[..., Any], pass_self: bool = False) -> None:
        if not isinstance(tool, Tool):
            if not callable(tool):
                raise TypeError("a tool is an instance of parley.Tool or a function")
            tool = Tool.function(types.MethodType(tool, self) if pass_self else tool)
        self.__dict__.setdefault("_extra_tools", []).append(tool)

    def tools(self) -> list[Tool]:
        """A tool for each public method, then those added with ``add_tool``."""
        if not self.__dict__.get("_prepared"):
            self._prepared = True
            self.prepare()
        prefix = type(self).__name__
        found = [
            Tool.function(getattr(self, name), name=f"{prefix}_{name}")
            for name in dir(self)
            if not name.startswith("_") and name not in self._blocked and callable(getattr(self, name))
        ]
        return found + self.__dict__.get("_extra_tools", [])


#: What ``tools=[...]`` accepts: a typed function, a ``Tool``, a bare ``ToolSpec``, or a ``Toolbox``
#: (which stands for its tools).
ToolLike = Callable[..., Any] | Tool | ToolSpec | Toolbox


def as_tools(items: Sequence[ToolLike] | None) -> dict[str, Tool] | None:
    """The tools by name; a name given twice is a ValueError."""
    if items is None:
        return None
    tools: dict[str, Tool] = {}
    for item in (t for i in items for t in (i.tools() if isinstance(i, Toolbox) else [i])):
        if isinstance(item, Tool):
            tool = item
        elif isinstance(item, ToolSpec):
            tool = Tool(spec=item)
        elif callable(item):
            tool = Tool.function(item)
        else:
            raise TypeError(f"a tool is a function, a parley.Tool or a parley.ToolSpec, not {type(item).__name__}")
        if tool.name in tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        tools[tool.name] = tool
    return tools


# ---- the schema -----------------------------------------------------------------


def _summary(function: Callable[..., Any]) -> str | None:
    """The docstring's first paragraph, on one line."""
    doc = inspect.getdoc(function)
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split())


def _arguments_struct(function: Callable[..., Any], name: str) -> tuple[type[msgspec.Struct], tuple[str, ...]]:
    """A struct with a field per parameter, and the names of those that must be passed positionally."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:  # an annotation that does not resolve
        raise TypeError(f"cannot read the annotations of tool {name!r}: {exc}") from exc
    fields: list[tuple[str, Any, Any]] = []
    positional: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *{param.name} cannot be described to a model; name each parameter")
        annotation = hints.get(param.name, Any)
        if annotation is object:
            annotation = Any
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(param.name)
        if param.default is _EMPTY:
            fields.append((param.name, annotation, msgspec.NODEFAULT))
        elif isinstance(param.default, (list, dict, set)) and param.default:
            default = param.default
            fields.append((param.name, annotation, msgspec.field(default_factory=lambda d=default: type(d)(d))))
        else:
            fields.append((param.name, annotation, param.default))
    fields = [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields]  # type: ignore[misc]
    try:
        struct = msgspec.defstruct(f"{name}_arguments", fields, kw_only=True)
        msgspec.json.schema(struct)
    except TypeError as exc:
        raise TypeError(f"tool {name!r}: {exc}") from exc
    return struct, tuple(positional)


def struct_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The struct's JSON schema as one object schema, references inlined (kept only for recursive types)."""
    generated = msgspec.json.schema(struct)
    defs: dict[str, Any] = generated.get("$defs", {})
    root = dict(defs[generated["$ref"].rsplit("/", 1)[1]])
    root.pop("title", None)
    kept: dict[str, Any] = {}

    def inline(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(n, stack) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = ref.rsplit("/", 1)[1]
            if target in stack:  # recursive: leave the reference, keep its definition
                kept[target] = None
                return node
            resolved = inline(defs[target], (*stack, target))
            return {**resolved, **{k: v for k, v in node.items() if k != "$ref"}}
        return {k: inline(v, stack) for k, v in node.items()}

    schema = inline(root, ())
    if "properties" not in schema:
        schema["properties"] = {}
    resolved: dict[str, Any] = {}
    while pending := [n for n in kept if n not in resolved]:
        for n in pending:
            resolved[n] = inline(defs[n], (n,))
    if resolved:
        schema["$defs"] = resolved
    return schema
