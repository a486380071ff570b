"""llm's flags on the `parley` command, run as a subprocess against a real daemon.

Attachments (a file, a URL served here on 127.0.0.1, stdin), ``-x``/``--xl``,
``--schema``/``--schema-multi`` (what reaches an OpenAI-compatible endpoint, a
replay server; and the local model's answer, when ``[local]`` is installed),
``parley logs``'s filters and ``parley stop``. What was stored is read back through
parley's Python client.
"""

from __future__ import annotations

import base64
import http.server
import json
import struct
import subprocess
import sys
import threading
import time
import zlib

import pytest
import yaml

import parley
from conftest import DaemonProcess, missing, openai_endpoint_daemon
from replay_server import ReplayServer, Reply, openai_text
from rpc import echo_script


def parley_cli(daemon: DaemonProcess, *args: str, stdin: bytes | str | None = None) -> subprocess.CompletedProcess:
    """The command; stdin is bytes or text (text: the output is decoded too)."""
    text = not isinstance(stdin, bytes)
    return subprocess.run(
        [sys.executable, "-m", "parleyd", *args], env=daemon.env, input=stdin, capture_output=True, text=text, timeout=60,
    )  # fmt: skip


def png(width: int = 1, height: int = 1) -> bytes:
    """A real PNG: signature, IHDR, one IDAT of white RGB pixels, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def latest_input(daemon: DaemonProcess) -> list[parley.AnyPart]:
    """The parts of the last user message of the latest response, as the daemon stored them."""
    with parley.connect(f"unix://{daemon.socket}") as client:
        conversation = client.conversation(client.conversations(limit=1)[0].id)
    return [m for m in conversation.messages if m.role == "user"][-1].parts


# ---- attachments ------------------------------------------------------------------


def test_a_png_file_is_attached_by_its_resolved_path(daemon, tmp_path, monkeypatch):
    (tmp_path / "photo.png").write_bytes(png())
    (tmp_path / "no-extension").write_bytes(png())  # the bytes say what it is
    monkeypatch.chdir(tmp_path)
    out = parley_cli(daemon, "prompt", "-a", "photo.png", "-a", "no-extension", "what is this?")
    assert (out.returncode, out.stdout, out.stderr) == (0, "what is this?\n", "")
    text, first, second = latest_input(daemon)
    assert text.text == "what is this?"
    assert first.attachment == parley.Attachment(mime_type="image/png", path=str(tmp_path / "photo.png"))
    assert second.attachment == parley.Attachment(mime_type="image/png", path=str(tmp_path / "no-extension"))


def test_at_names_the_type_and_an_extension_is_a_fallback(daemon, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# hello\n")
    data = tmp_path / "data.qqq"
    data.write_bytes(b"\x00\x01")
    out = parley_cli(daemon, "prompt", "-a", str(notes), "--at", str(data), "application/x-thing", "read these")
    assert out.returncode == 0, out.stderr
    _, markdown, typed = latest_input(daemon)
    assert markdown.attachment.mime_type == "text/markdown" and typed.attachment.mime_type == "application/x-thing"
    unknown = parley_cli(daemon, "prompt", "-a", str(data), "read it")
    assert unknown.returncode == 1 and unknown.stderr.startswith(f"parley: Could not determine mimetype of {data}")
    missing_file = parley_cli(daemon, "prompt", "-a", "nope.png", "hi")
    assert (missing_file.returncode, missing_file.stderr) == (1, "parley: File nope.png does not exist\n")


def test_stdin_bytes_are_attached_as_content(daemon):
    image = png(2, 2)
    out = parley_cli(daemon, "prompt", "-a", "-", "describe it", stdin=image)
    assert (out.returncode, out.stdout) == (0, b"describe it\n"), out.stderr  # stdin was the image, not prompt text
    text, part = latest_input(daemon)
    assert text.text == "describe it"
    assert part.attachment.mime_type == "image/png" and base64.b64decode(part.attachment.content) == image
    alone = parley_cli(daemon, "prompt", "--at", "-", "image/png", stdin=image)  # no text: the attachment is the prompt
    assert alone.returncode == 0, alone.stderr
    assert [p.type for p in latest_input(daemon)] == ["attachment"]
    unknown = parley_cli(daemon, "prompt", "-a", "-", "what?", stdin=b"plain bytes")
    assert unknown.returncode == 1 and b"Could not determine mimetype of stdin" in unknown.stderr


class _Images(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802
        if self.path == "/cat.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png; charset=binary")
        else:
            self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_is_attached_with_the_type_its_server_gives(daemon, image_server):
    out = parley_cli(daemon, "prompt", "-a", f"{image_server}/cat.png", "a cat?")
    assert out.returncode == 0, out.stderr
    assert latest_input(daemon)[1].attachment == parley.Attachment(mime_type="image/png", url=f"{image_server}/cat.png")
    gone = parley_cli(daemon, "prompt", "-a", f"{image_server}/gone.png", "a cat?")
    assert gone.returncode == 1 and gone.stderr == f"parley: {image_server}/gone.png: HTTP Error 404: Not Found\n"


# ---- -x / --xl --------------------------------------------------------------------

FENCED = "Here you go:\n```python\nprint('first')\n```\nand then\n````\nlast = 2\n````\ndone"


def test_extract_prints_a_fenced_code_block_of_the_answer(daemon):
    first = parley_cli(daemon, "prompt", "-x", FENCED)
    assert (first.returncode, first.stdout) == (0, "print('first')\n"), first.stderr
    last = parley_cli(daemon, "prompt", "--xl", FENCED)
    assert last.stdout == "last = 2\n"
    none = parley_cli(daemon, "prompt", "--extract", "no code here")
    assert none.stdout == "no code here\n"  # as llm: the whole answer when there is no block
    reasoning = parley_cli(daemon, "prompt", "-x", echo_script({"type": "reasoning", "chunk": "hm"}, {"type": "text", "chunk": "```\nx\n```"}))
    assert (reasoning.stdout, reasoning.stderr) == ("x\n", "hm\n")


# ---- --schema ---------------------------------------------------------------------


@pytest.fixture
def upstream():
    with ReplayServer() as server:
        yield server


@pytest.fixture
def openai_daemon(tmp_path, upstream, monkeypatch):
    """A daemon with `echo` as its default and `mini`, an OpenAI-compatible endpoint: the replay server."""
    monkeypatch.setenv("PARLEY_TEST_OPENAI_KEY", "sk-test-0123456789abcdef")
    proc = openai_endpoint_daemon(tmp_path / "home", upstream.url, '{ id = "mini", name = "upstream-mini", aliases = ["small"] }')
    yield proc
    proc.stop()


DOG = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}


@pytest.mark.parametrize("how", ["json", "dsl", "file"])
def test_schema_is_sent_as_the_schema_option(openai_daemon, upstream, tmp_path, how):
    path = tmp_path / "dog.json"
    path.write_text(json.dumps(DOG))
    value = {"json": json.dumps(DOG), "dsl": "name, age int", "file": str(path)}[how]
    upstream.queue(Reply(body=openai_text('{"name": "Rex", "age": 3}')))
    out = parley_cli(openai_daemon, "prompt", "-m", "mini", "--schema", value, "a dog")
    assert (out.returncode, json.loads(out.stdout)) == (0, {"name": "Rex", "age": 3}), out.stderr
    sent = upstream.requests[-1].json()["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": DOG}}


def test_schema_multi_asks_for_a_list_of_items(openai_daemon, upstream):
    upstream.queue(Reply(body=openai_text('{"items": []}')))
    out = parley_cli(openai_daemon, "prompt", "-m", "mini", "--schema-multi", "name, age int", "dogs")
    assert out.returncode == 0, out.stderr
    schema = upstream.requests[-1].json()["response_format"]["json_schema"]["schema"]
    assert schema == {"type": "object", "properties": {"items": {"type": "array", "items": DOG}}, "required": ["items"]}


def test_schema_on_echo_checks_its_answer_and_fails_clearly(daemon):
    """Echo takes a schema: the daemon checks the echoed answer against it."""
    ok = parley_cli(daemon, "prompt", "--schema", "name, age int", '{"name": "Rex", "age": 3}')
    assert (ok.returncode, json.loads(ok.stdout)) == (0, {"name": "Rex", "age": 3}), ok.stderr
    wrong = parley_cli(daemon, "prompt", "--schema", "name, age int", "-x", "a dog")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith("parley: schema_mismatch: the answer is not JSON") and wrong.stderr.count("\n") == 1


def test_a_schema_is_refused_before_sending_to_a_model_without_one():
    from parleyd._cli._schema import check_model_takes_schema

    def info(model_id: str, schema: bool) -> parley.ModelInfo:
        return parley.ModelInfo(id=model_id, provider="test", aliases=[], default=False, capabilities=parley.ModelCapabilities(schema=schema))

    plain, able = info("plain", False), info("able", True)
    with pytest.raises(SystemExit, match=r"^parley: model 'plain' does not take a schema \(--schema\); models that do: able$"):
        check_model_takes_schema(parley.Model(None, plain), [plain, able])
    with pytest.raises(SystemExit, match="no model this daemon serves does"):
        check_model_takes_schema(parley.Model(None, plain), [plain])
    check_model_takes_schema(parley.Model(None, able), [plain, able])


def test_a_schema_that_cannot_be_read_is_refused(openai_daemon, upstream):
    bad = parley_cli(openai_daemon, "prompt", "-m", "mini", "--schema", "age integer", "a dog")
    assert (bad.returncode, bad.stderr) == (1, "parley: --schema: Invalid schema DSL: unknown type 'integer' for field 'age'\n")
    neither = parley_cli(openai_daemon, "prompt", "-m", "mini", "--schema", "nofile.json", "a dog")
    assert neither.returncode == 1 and "invalid schema 'nofile.json'" in neither.stderr
    assert upstream.requests == []  # nothing was sent


def test_schema_with_the_local_model_answers_in_it(daemon):
    from parleyd._models.local import llama_cpp_installed, smollm2_gguf

    if smollm2_gguf() is None or not llama_cpp_installed():
        missing("the local model needs pip install -e '.[local]'")
    args = ["prompt", "-m", "smollm2", "-o", "temperature", "0", "-o", "max_tokens", "200"]
    out = parley_cli(daemon, *args, "--schema", "name, age int", "Invent a dog: its name and age.")
    assert out.returncode == 0, out.stderr
    dog = json.loads(out.stdout)
    assert set(dog) == {"name", "age"} and isinstance(dog["name"], str) and isinstance(dog["age"], int)


# ---- parley logs ------------------------------------------------------------------


def test_logs_filter_by_model_conversation_and_current(openai_daemon, upstream):
    upstream.queue(Reply(body=openai_text("from", " mini")))
    assert parley_cli(openai_daemon, "prompt", "-m", "mini", "ask mini").returncode == 0
    parley_cli(openai_daemon, "prompt", "ask echo")
    parley_cli(openai_daemon, "prompt", "-c", "echo again")
    parley_cli(openai_daemon, "prompt", "newest echo")

    def logs(*args: str) -> list[dict]:
        out = parley_cli(openai_daemon, "logs", "--json", *args)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert [c["title"] for c in logs("-m", "mini")] == ["ask mini"]
    assert [c["title"] for c in logs("-m", "small")] == ["ask mini"]  # an alias
    assert [c["title"] for c in logs("-m", "echo", "-n", "5")] == ["newest echo", "ask echo"]
    assert [c["title"] for c in logs("-m", "echo", "-n", "1")] == ["newest echo"]
    assert logs("-m", "gone-model") == []
    assert [c["title"] for c in logs("-c")] == ["newest echo"]
    mini = logs("-m", "mini")[0]
    assert logs("--cid", mini["id"]) == [mini]
    unknown = parley_cli(openai_daemon, "logs", "--cid", "conv_nope")
    assert (unknown.returncode, unknown.stderr) == (1, "parley: unknown conversation 'conv_nope'\n")


def test_logs_short_is_yaml(daemon, tmp_path):
    (tmp_path / "photo.png").write_bytes(png())
    parley_cli(daemon, "prompt", "-a", str(tmp_path / "photo.png"), "first " * 40)
    parley_cli(daemon, "prompt", "-c", "second")
    out = parley_cli(daemon, "logs", "-s", "-n", "1")
    assert out.returncode == 0, out.stderr
    [entry] = yaml.safe_load(out.stdout)
    assert entry["model"] == "echo" and entry["responses"] == 2 and entry["conversation"].startswith("conv_")
    long, short = entry["prompts"]
    assert len(long) <= 120 and long.startswith("first first") and " ... " in long and short == "second"
    assert f"# attachment: image/png {tmp_path / 'photo.png'}" in out.stdout
    both = parley_cli(daemon, "logs", "-s", "--json")
    assert (both.returncode, both.stderr) == (1, "parley: cannot use --short and --json together\n")
    markdown = parley_cli(daemon, "logs", "-n", "1").stdout
    assert f"[attachment: image/png {tmp_path / 'photo.png'}]" in markdown


# ---- parley stop ------------------------------------------------------------------


def test_stop_ends_the_daemon_and_a_running_response_is_interrupted(daemon):
    slow = echo_script({"type": "text", "chunk": "One"}, {"type": "text", "chunk": " two", "delayMs": 30000})
    running = subprocess.Popen([sys.executable, "-m", "parleyd", "prompt", slow], env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with parley.connect(f"unix://{daemon.socket}") as client:
            deadline = time.monotonic() + 20
            while client.status().running_responses == 0:
                assert time.monotonic() < deadline, "the prompt never started"
                time.sleep(0.05)
            [summary] = client.conversations(limit=1)
            [response_id] = client.conversation(summary.id).response_ids
        out = parley_cli(daemon, "stop")
        assert (out.returncode, out.stdout) == (0, f"Stopped the parley daemon (pid {daemon.process.pid}).\n"), out.stderr
        assert not daemon.socket.exists()  # `stop` returns once the daemon has stopped, not when signalled
        assert daemon.process.wait(timeout=5) == 0
        stdout, stderr = running.communicate(timeout=20)
    finally:
        running.kill()
    assert running.returncode == 1 and stdout.startswith("One") and "parley: interrupted:" in stderr
    again = parley_cli(daemon, "stop")
    assert again.returncode == 0 and "nothing to stop" in again.stderr
    daemon.start()  # the same home: read back what was stored
    with parley.connect(f"unix://{daemon.socket}") as client:
        response = client._call("response/get", parley.ResponseIdParams(response_id=response_id))
    assert response.status == "interrupted" and parley.text_of(response.messages[0]) == "One"
    assert response.error.code == "interrupted"
