"""A real local HTTP server speaking the chat-completions API, scriptable per test.

    with FakeOpenAI(script) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="...", max_retries=0)

`script` decides each reply: a list of Reply (used in order; the last one repeats), or a callable
(request_json, call_index) -> Reply. The server counts calls and keeps every request body and
its headers, so tests can check what the client really sent.

Replies a broken or hostile endpoint sends: not_json_reply (a 200 HTML page, or non-JSON served as
JSON), truncated_reply (cut-off JSON), wrong_schema_reply (no choices / no usage),
unauthorized_reply (401), forbidden_reply (403), quota_reply (429 insufficient_quota),
error_reply(429) (a plain rate limit), server_error_reply (500), hang_reply (past the timeout).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence


@dataclass
class Reply:
    content: str | None = '{"score": 5, "rationale": "all events seen"}'
    status: int = 200
    delay_s: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 20
    headers: dict = field(default_factory=dict)
    body: dict | list | str | None = None  # overrides the whole body (errors, garbage)
    usage: bool = True
    content_type: str = "application/json"
    drop: tuple[str, ...] = ()  # top-level keys removed from the completion (a wrong schema)
    truncate: int | None = None  # send only the first N characters of the completion's JSON


def score_reply(score, rationale: str = "seen", **kw) -> Reply:
    return Reply(content=json.dumps({"score": score, "rationale": rationale}), **kw)


def error_reply(status: int, message: str = "error", code: str | None = None, **kw) -> Reply:
    """An OpenAI-style error body; `code` overrides the error code the status usually carries."""
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 401: "invalid_api_key",
            403: "permission_denied"}.get(status, "server_error")
    code = code or kind
    return Reply(content=None, status=status, body={"error": {"message": message, "type": code, "code": code}}, **kw)


# -- replies a broken or hostile endpoint sends ----------------------------------------------------

def not_json_reply(text: str = "<html><body>502 Bad Gateway</body></html>", content_type: str = "text/html",
                   **kw) -> Reply:
    """A 200 whose body is not JSON. With a text/* type the openai client hands back a str; with
    application/json it fails to decode the body."""
    return Reply(body=text, content_type=content_type, **kw)


def truncated_reply(chars: int = 60, **kw) -> Reply:
    """A 200 whose body is a completion's JSON cut off after `chars` characters."""
    return Reply(truncate=chars, **kw)


def wrong_schema_reply(drop: tuple[str, ...] = ("choices", "usage"), **kw) -> Reply:
    """A 200 with JSON that is not a chat completion: the completion minus `drop`'s keys."""
    return Reply(drop=drop, **kw)


def unauthorized_reply(message: str = "Incorrect API key provided.", **kw) -> Reply:
    return error_reply(401, message, **kw)


def forbidden_reply(message: str = "You are not allowed to sample from this model", **kw) -> Reply:
    return error_reply(403, message, **kw)


def quota_reply(**kw) -> Reply:
    """OpenAI's out-of-credit 429: a quota, not a rate limit, so waiting does not help."""
    return error_reply(429, "You exceeded your current quota, please check your plan and billing details.",
                       code="insufficient_quota", **kw)


def server_error_reply(**kw) -> Reply:
    return error_reply(500, "The server had an error while processing your request.", **kw)


def hang_reply(seconds: float = 5.0, **kw) -> Reply:
    """Answers only after `seconds` (past the client's timeout in the tests that use it)."""
    return Reply(delay_s=seconds, **kw)


Script = Sequence[Reply] | Callable[[dict, int], Reply]


class FakeOpenAI:
    def __init__(self, script: Script | None = None):
        self.script: Script = script if script is not None else [Reply()]
        self.calls = 0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                try:
                    req = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}}, {})
                    return
                with fake.lock:
                    n = fake.calls
                    fake.calls += 1
                    fake.requests.append(req)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = fake._reply_for(req, n)
                if reply.delay_s and fake._stop.wait(reply.delay_s):
                    return
                if reply.body is not None:
                    body = reply.body
                else:
                    body = {
                        "id": f"chatcmpl-fake-{n}", "object": "chat.completion", "created": int(time.time()),
                        "model": req.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.content}}],
                    }
                    if reply.usage:
                        body["usage"] = {"prompt_tokens": reply.prompt_tokens,
                                         "completion_tokens": reply.completion_tokens,
                                         "total_tokens": reply.prompt_tokens + reply.completion_tokens}
                    for key in reply.drop:
                        body.pop(key, None)
                    if reply.truncate is not None:  # a complete HTTP body holding cut-off JSON
                        body = json.dumps(body)[: reply.truncate]
                self._send(reply.status, body, reply.headers, reply.content_type)

            def _send(self, status, body, headers, content_type="application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- scripting ----------------------------------------------------------------------------
    def _reply_for(self, req: dict, n: int) -> Reply:
        if callable(self.script):
            return self.script(req, n)
        seq = list(self.script)
        return seq[min(n, len(seq) - 1)]


def prompt_of(req: dict) -> str:
    """The prompt text the judge put in a request (between the first pair of double quotes)."""
    for m in req.get("messages", []):
        if m.get("role") == "user":
            parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            for p in parts:
                if p.get("type") == "text" and '"' in p["text"]:
                    return p["text"].split('"')[1]
    return ""


def images_of(req: dict) -> list[str]:
    out = []
    for m in req.get("messages", []):
        if isinstance(m.get("content"), list):
            out += [p["image_url"]["url"] for p in m["content"] if p.get("type") == "image_url"]
    return out
