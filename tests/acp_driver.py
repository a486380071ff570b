"""A raw Agent Client Protocol peer for tests: `parley acp` over its stdio, NDJSON, nothing of an SDK.

The SDKs validate leniently (a bad field is defaulted, a bad notification only logged), so
this speaks the wire itself, records every frame in both directions, and checks them
afterwards: against the official ACP v1 JSON schema (`schema_violations`, `unknown_fields`) and
against the ordering rules of a prompt turn (`ordering_violations`). `assert_valid` runs them all.

The schema comes from the npm package `@agentclientprotocol/sdk` (tests/acp_peer, `npm ci`
there), which ships it as schema/v1/schema.json.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import referencing

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "tests" / "acp_peer"
SCHEMA_PATH = PEER_DIR / "node_modules" / "@agentclientprotocol" / "sdk" / "schema" / "v1" / "schema.json"
LINE_LIMIT = 2**26  # one NDJSON line may be large (an embedded file)

Handler = Callable[[dict], Any]  # params -> result (or an awaitable of it); raise AcpError to answer an error


class AcpError(Exception):
    """A JSON-RPC error answer, received (from the agent) or to send (from a handler)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({data!r})" if data is not None else ""))
        self.code, self.message, self.data = code, message, data

    def wire(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass
class Frame:
    """One NDJSON line, as sent (``sender`` "client") or received (``sender`` "agent")."""

    sender: str
    message: Any
    index: int
    answers: str | None = None  # for a response: the method of the request it answers
    deliberate: bool = False  # a frame the test made invalid on purpose: not schema-checked

    @property
    def kind(self) -> str:
        m = self.message
        if not isinstance(m, dict):
            return "invalid"
        if "method" in m:
            return "request" if "id" in m else "notification"
        return "response" if "result" in m or "error" in m else "invalid"

    @property
    def method(self) -> str | None:
        return self.message.get("method") if isinstance(self.message, dict) else None

    @property
    def session_id(self) -> str | None:
        params = self.message.get("params") if isinstance(self.message, dict) else None
        return params.get("sessionId") if isinstance(params, dict) else None

    def __str__(self) -> str:
        text = json.dumps(self.message)
        return f"#{self.index} {self.sender}: {text if len(text) < 400 else text[:400] + '…'}"


def file_path(uri_or_path: str) -> Path:
    return Path(unquote(urlparse(uri_or_path).path)) if uri_or_path.startswith("file://") else Path(uri_or_path)


def read_text_file(params: dict) -> dict:
    """fs/read_text_file as an editor answers it: from disk, `line` 1-based, at most `limit` lines."""
    try:
        text = file_path(params["path"]).read_text()
    except FileNotFoundError as exc:
        raise AcpError(-32002, f"file not found: {params['path']}") from exc
    if params.get("line") is None and params.get("limit") is None:
        return {"content": text}
    lines = text.splitlines(keepends=True)
    start = max((params.get("line") or 1) - 1, 0)
    end = None if params.get("limit") is None else start + params["limit"]
    return {"content": "".join(lines[start:end])}


def write_text_file(params: dict) -> dict:
    """fs/write_text_file as an editor answers it: the file written, an empty result."""
    file_path(params["path"]).write_text(params["content"])
    return {}


def allow(params: dict) -> dict:
    """session/request_permission answered by a user who allows once (or the first allowing option)."""
    options = params["options"]
    chosen = next((o for o in options if o["kind"] == "allow_once"), None) or next((o for o in options if o["kind"].startswith("allow")), options[0])
    return {"outcome": {"outcome": "selected", "optionId": chosen["optionId"]}}


def reject(params: dict) -> dict:
    options = params["options"]
    chosen = next((o for o in options if o["kind"].startswith("reject")), options[0])
    return {"outcome": {"outcome": "selected", "optionId": chosen["optionId"]}}


@dataclass
class Deliberate:
    """A handler's result that breaks the schema on purpose (a real client's quirk): sent as is,
    not schema-checked."""

    result: Any


class AcpPeer:
    """The client side of one `parley acp` process: requests out, every agent request answered."""

    def __init__(self, process: asyncio.subprocess.Process, handlers: dict[str, Handler]) -> None:
        self.process = process
        self.handlers = handlers
        self.frames: list[Frame] = []
        self.bad_lines: list[bytes] = []  # stdout lines that were not one JSON value
        self.agent_requests: list[dict] = []  # what the agent asked, for assertions
        self._ids = itertools.count(1)
        self._pending: dict[Any, tuple[str, asyncio.Future]] = {}
        self._sent_methods: dict[Any, str] = {}
        self._agent_methods: dict[Any, str] = {}
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def spawn(cls, argv: list[str], env: dict[str, str], *, cwd: Path | None = None, handlers: dict[str, Handler] | None = None, stderr: Path | None = None) -> AcpPeer:
        err = open(stderr, "ab") if stderr else asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, limit=LINE_LIMIT
        )
        if stderr:
            err.close()
        return cls(process, {"fs/read_text_file": read_text_file, "fs/write_text_file": write_text_file, "session/request_permission": allow, **(handlers or {})})

    # -- sending --------------------------------------------------------------------------

    async def _send(self, message: dict, answers: str | None = None, deliberate: bool = False) -> None:
        self.frames.append(Frame("client", message, len(self.frames), answers=answers, deliberate=deliberate))
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def send_raw(self, line: bytes) -> None:
        """Write one line as is (garbage, a batch…): recorded as a deliberate frame."""
        try:
            message = json.loads(line)
        except ValueError:
            message = line.decode(errors="replace")
        self.frames.append(Frame("client", message, len(self.frames), deliberate=True))
        self.process.stdin.write(line + b"\n")
        await self.process.stdin.drain()

    async def start(self, method: str, params: Any = None, *, deliberate: bool = False) -> tuple[Any, asyncio.Future]:
        """Send a request; its id and a future of its result (AcpError for an error answer).
        ``deliberate``: the request breaks the schema on purpose, to see the agent refuse it."""
        rid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, future)
        self._sent_methods[rid] = method
        message = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message, deliberate=deliberate)
        return rid, future

    async def start_together(self, *requests: tuple[str, Any]) -> list[asyncio.Future]:
        """Several requests in one write, so that they arrive as one read: the agent must take
        them in order without any time between them. Their futures, in order."""
        lines, futures = [], []
        for method, params in requests:
            rid = next(self._ids)
            future = asyncio.get_running_loop().create_future()
            self._pending[rid] = (method, future)
            self._sent_methods[rid] = method
            message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
            self.frames.append(Frame("client", message, len(self.frames)))
            lines.append(json.dumps(message).encode() + b"\n")
            futures.append(future)
        self.process.stdin.write(b"".join(lines))
        await self.process.stdin.drain()
        return futures

    async def request(self, method: str, params: Any = None, *, timeout: float = 20, deliberate: bool = False) -> Any:
        _, future = await self.start(method, params, deliberate=deliberate)
        return await self.answer(future, timeout, method)

    async def answer(self, future: asyncio.Future, timeout: float = 20, what: str = "the request") -> Any:
        """The result of a started request, failing with the transcript if it takes over ``timeout``."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise AssertionError(f"no answer to {what} within {timeout} s\n--- transcript ---\n{self.transcript()}") from None

    async def notify(self, method: str, params: Any = None) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    # -- receiving --------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while line := await self.process.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    self.bad_lines.append(line)
                    continue
                frame = Frame("agent", message, len(self.frames))
                self.frames.append(frame)
                self._dispatch(frame)
                self._arrived.set()
        finally:
            for method, future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"parley acp closed its stdout before answering {method}"))
            self._arrived.set()

    def _dispatch(self, frame: Frame) -> None:
        m = frame.message
        if frame.kind == "response" and m.get("id") in self._pending:
            method, future = self._pending.pop(m["id"])
            frame.answers = method
            if not future.done():
                if "error" in m:
                    e = m["error"] if isinstance(m["error"], dict) else {}
                    future.set_exception(AcpError(e.get("code", 0), e.get("message", ""), e.get("data")))
                else:
                    future.set_result(m["result"])
        elif frame.kind == "response":
            frame.answers = self._sent_methods.get(m.get("id"))
        elif frame.kind == "request":
            self._agent_methods[m["id"]] = m["method"]
            self.agent_requests.append(m)
            task = asyncio.get_running_loop().create_task(self._answer(m))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: dict) -> None:
        handler = self.handlers.get(request["method"])
        answer: dict = {"jsonrpc": "2.0", "id": request["id"]}
        deliberate = False
        try:
            if handler is None:
                raise AcpError(-32601, f"method not found: {request['method']}")
            result = handler(request.get("params"))
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, Deliberate):
                result, deliberate = result.result, True
            answer["result"] = result
        except AcpError as exc:
            answer["error"] = exc.wire()
        if self.process.returncode is None:
            try:
                await self._send(answer, answers=request["method"], deliberate=deliberate)
            except ConnectionError:
                pass

    # -- looking --------------------------------------------------------------------------

    def updates(self, session_id: str, since: int = 0) -> list[dict]:
        """The `update` of each session/update for a session, in order, from frame index ``since``."""
        return [
            f.message["params"]["update"]
            for f in self.frames[since:]
            if f.sender == "agent" and f.method == "session/update" and f.session_id == session_id
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        async def poll() -> Any:
            while not (value := predicate()):
                if self.process.stdout.at_eof() and self._reader.done():
                    raise ConnectionError("parley acp closed its stdout")
                self._arrived.clear()
                await self._arrived.wait()
            return value

        return await asyncio.wait_for(poll(), timeout)

    async def close(self, timeout: float = 15) -> int:
        """Close its stdin, as an editor that quits does; it must exit by itself."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"parley acp did not exit within {timeout} s of its stdin closing") from None
        finally:
            await asyncio.wait_for(self._reader, timeout)

    def transcript(self) -> str:
        return "\n".join(map(str, self.frames))


# -- the official schema ------------------------------------------------------------------------


@cache
def _schema() -> tuple[dict, referencing.Registry, dict[tuple[str, str], str]]:
    """The schema, a registry to resolve its $refs, and (method, kind) -> the definition of that frame part.

    Each request, response and notification definition names its method in ``x-method``; requests and
    notifications are named ``…Request``/``…Notification`` and results ``…Response``.
    """
    schema = json.loads(SCHEMA_PATH.read_text())
    resource = referencing.Resource.from_contents(schema, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource("acp:schema", resource)
    by_method: dict[tuple[str, str], str] = {}
    for name, definition in schema["$defs"].items():
        method = definition.get("x-method")
        if method:
            part = "result" if name.endswith("Response") else "params"
            by_method[(method, part)] = name
    return schema, registry, by_method


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    _, registry, _ = _schema()
    return jsonschema.Draft202012Validator({"$ref": f"acp:schema#/$defs/{definition}"}, registry=registry)


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The cause of a failed anyOf/oneOf that says most: the branch that got furthest (no failed
    discriminator ``const``, fewest errors), recursively."""
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for e in error.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        best = min(branches.values(), key=lambda errs: (any(e.validator == "const" for e in errs), len(errs), -max(len(e.absolute_path) for e in errs)))
        error = max(best, key=lambda e: len(e.absolute_path))
    return error


def _errors(definition: str, value: Any, where: str) -> list[str]:
    found = []
    for error in _validator(definition).iter_errors(value):
        leaf = _leaf(error)
        path = where + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in leaf.absolute_path)
        found.append(f"{path}: {leaf.message} (schema {definition}: {'/'.join(map(str, leaf.absolute_schema_path))})")
    return found


def schema_violations(frames: Iterable[Frame]) -> list[str]:
    """Every way the frames break ACP v1's schema, one line each, naming the frame.

    A frame is checked as a whole (the ``Agent``/``Client`` message unions by sender: JSON-RPC
    envelope, request, response or notification) and then its params or result against the
    definition of its method, so that a response is checked against its own method's result type
    and not against whichever result type happens to match.
    """
    _, _, by_method = _schema()
    found = []
    for frame in frames:
        if frame.deliberate:
            continue
        message = frame.message
        problems = []
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            problems.append(f"not a JSON-RPC 2.0 object: {message!r:.200}")
        else:
            sender_union = {"agent": ("AgentRequest", "AgentResponse", "AgentNotification"), "client": ("ClientRequest", "ClientResponse", "ClientNotification")}[frame.sender]
            kind = frame.kind
            if kind == "request":
                problems += _errors(sender_union[0], message, "")
            elif kind == "response":
                problems += _errors(sender_union[1], message, "")
            elif kind == "notification":
                problems += _errors(sender_union[2], message, "")
            else:
                problems.append("neither request, response nor notification")
            method = frame.method if kind in ("request", "notification") else frame.answers
            part = "params" if kind in ("request", "notification") else "result"
            if kind == "response" and "error" in message:
                pass  # checked by the union: Error
            elif method is None and kind == "response":
                problems.append(f"answers id {message.get('id')!r}, which the other side never sent")
            elif method is not None:
                definition = by_method.get((method, part))
                if definition is None and not method.startswith("_"):
                    problems.append(f"method {method!r} is not in ACP v1's schema")
                elif definition is not None:
                    if part not in message:
                        problems.append(f"{part} missing (schema {definition})")
                    else:
                        problems += _errors(definition, message[part], part)
        found += [f"frame #{frame.index} ({frame.sender} {frame.kind} {frame.method or frame.answers or ''}): {p}" for p in problems]
    return found


#: Where a value is free-form: extension metadata, a tool's own input and output, error data.
_OPAQUE = frozenset({"_meta", "rawInput", "rawOutput", "data"})


@cache
def _known_names() -> frozenset[str]:
    schema, _, _ = _schema()
    names: set[str] = {"jsonrpc", "id", "method", "params", "result", "error"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return frozenset(names)


def unknown_fields(frames: Iterable[Frame]) -> list[str]:
    """Fields of the agent's frames that no definition of the schema has. ACP reserves every name
    at the root of its types (extensibility: custom data goes in ``_meta``), and the schema does not
    forbid extra properties, so this is checked apart: by name, anywhere in the schema."""
    known = _known_names()
    found = []

    def walk(value: Any, path: str, frame: Frame) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in known:
                    found.append(f"frame #{frame.index} ({frame.sender} {frame.kind} {frame.method or frame.answers or ''}): {path}[{key!r}]: a field ACP v1 does not have")
                elif key not in _OPAQUE:
                    walk(item, f"{path}[{key!r}]", frame)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", frame)

    for frame in frames:
        if frame.sender == "agent":
            walk(frame.message, "", frame)
    return found


# -- ordering --------------------------------------------------------------------------------

_TURNS = ("session/prompt", "session/load")


def ordering_violations(frames: list[Frame]) -> list[str]:
    """The rules of ACP's turn order, checked over a whole recording:

    - every request gets exactly one answer, and nothing answers an id that was not asked;
    - no session/update names a session before the answer that made it (session/new);
    - a prompt's updates (and a load's replay) all come before its answer, and after that answer
      nothing more arrives for the session until the client sends it something new.
    """
    found = []
    asked: dict[tuple[str, Any], Frame] = {}
    answered: dict[tuple[str, Any], Frame] = {}
    known_sessions: set[str] = set()
    quiet_since: dict[str, Frame] = {}  # session -> the answer that ended its last turn
    for frame in frames:
        m = frame.message
        if not isinstance(m, dict):
            continue
        if frame.deliberate:  # a bad line of the test's: only its id counts, if it has a usable one
            if frame.kind == "request" and isinstance(m["id"], (int, str)):
                asked[(frame.sender, m["id"])] = frame
            continue
        other = "agent" if frame.sender == "client" else "client"
        if frame.kind == "request":
            key = (frame.sender, m["id"])
            if key in asked:
                found.append(f"{frame}: reuses the id of {asked[key]}")
            asked[key] = frame
            if frame.sender == "client" and frame.session_id:
                known_sessions.add(frame.session_id)  # a client may load a session it knows of
                quiet_since.pop(frame.session_id, None)
        elif frame.kind == "notification" and frame.sender == "client" and frame.session_id:
            quiet_since.pop(frame.session_id, None)
        elif frame.kind == "response":
            key = (other, m.get("id"))
            if m.get("id") is None and "error" in m:
                continue  # the answer to a line that was no request (JSON-RPC's id null)
            if key not in asked:
                found.append(f"{frame}: answers an id that was never asked")
                continue
            if key in answered:
                found.append(f"{frame}: a second answer to {asked[key]} (first: {answered[key]})")
                continue
            answered[key] = frame
            request = asked[key]
            result = m.get("result") if isinstance(m.get("result"), dict) else {}
            if frame.sender == "agent" and isinstance(result.get("sessionId"), str):
                known_sessions.add(result["sessionId"])
            if frame.sender == "agent" and request.method in _TURNS and request.session_id:
                quiet_since[request.session_id] = frame
        elif frame.kind == "notification" and frame.sender == "agent" and frame.method == "session/update":
            sid = frame.session_id
            if sid not in known_sessions:
                found.append(f"{frame}: an update for session {sid!r} before any answer named it")
            elif sid in quiet_since:
                found.append(f"{frame}: an update after {quiet_since[sid]} ended the turn, before the client sent anything new")
    for key, request in asked.items():
        if key not in answered and request.sender == "client":
            found.append(f"{request}: never answered")
    return found


# -- running `parley acp` in the tests ------------------------------------------------------------

def parley_acp_argv(*args: str) -> list[str]:
    """`parley acp` as an editor starts it: this interpreter, the repository's sources (by the env)."""
    return [sys.executable, "-m", "parleyd", "acp", *args]


@asynccontextmanager
async def parley_acp(daemon: Any, cwd: Path, *, handlers: dict[str, Handler] | None = None) -> AsyncIterator[AcpPeer]:
    """`parley acp` on the test's daemon (conftest's ``daemon``), its stderr in the daemon's home."""
    peer = await AcpPeer.spawn(parley_acp_argv(), daemon.env, cwd=cwd, handlers=handlers, stderr=daemon.home / "acp.log")
    try:
        yield peer
    finally:
        if peer.process.returncode is None:
            await peer.close()


def assert_valid(peer: AcpPeer) -> None:
    """Every stdout line JSON, every frame valid ACP v1, the turn order kept."""
    problems = [f"not JSON: {line[:200]!r}" for line in peer.bad_lines] + schema_violations(peer.frames) + unknown_fields(peer.frames) + ordering_violations(peer.frames)
    assert not problems, "\n".join(problems) + "\n\n--- transcript ---\n" + peer.transcript()


def rounds(*rounds_: list[dict]) -> str:
    """An echo script of tool-chain rounds (PROTOCOL.md §8): round n plays the n-th list."""
    return json.dumps({"rounds": list(rounds_)})


def call(name: str, call_id: str, arguments: dict) -> list[dict]:
    """The echo events of one tool call."""
    return [
        {"type": "tool_call_name", "toolCallId": call_id, "chunk": name},
        {"type": "tool_call_args", "toolCallId": call_id, "chunk": json.dumps(arguments)},
    ]


def option(options: list[dict], category: str) -> dict:
    """The config option of a category (``model``, ``thought_level``)."""
    found = [o for o in options if o.get("category") == category]
    assert len(found) == 1, f"one {category!r} option expected in {options}"
    return found[0]


def values(select: dict) -> list[str]:
    """The values a select option offers, groups flattened."""
    return [v["value"] for o in select["options"] for v in (o["options"] if "group" in o else [o])]
