"""A real local HTTP server speaking the chat-completions API, scriptable per test.

    with FakeOpenAI(script) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="...", max_retries=0)

`script` decides each reply: a list of Reply (used in order; the last one repeats), or a callable
(request_json, call_index) -> Reply. The server counts calls and keeps every request body and
its headers, so tests can check what the client really sent.
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
    body: dict | str | None = None  # overrides the whole body (errors, garbage)
    usage: bool = True


def score_reply(score, rationale: str = "seen", **kw) -> Reply:
    return Reply(content=json.dumps({"score": score, "rationale": rationale}), **kw)


def error_reply(status: int, message: str = "error", **kw) -> Reply:
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 401: "invalid_api_key"}.get(status, "server_error")
    return Reply(content=None, status=status, body={"error": {"message": message, "type": kind, "code": kind}}, **kw)


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
                self._send(reply.status, body, reply.headers)

            def _send(self, status, body, headers):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
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
