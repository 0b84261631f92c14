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

Token counting (count_tokens=True): usage.prompt_tokens is what the server counts in the request,
images by OpenAI's documented rule for GPT-4o-class models (implemented here on its own, from the
images' real pixel sizes, so it checks services/judge/estimate.py rather than copying it) plus
text (text_tokens="bytes": one per UTF-8 byte, the estimate's upper bound; "words": one per word
or punctuation mark, closer to a real tokenizer) plus 3 per message and 3 for the reply.

Structured output as vLLM does it: a request carrying `guided_json` (or `structured_outputs.json`)
is answered with JSON that satisfies the schema (the scripted score when it is allowed, else the
schema's first allowed score).

The Batch API, the way OpenAI serves it: POST /v1/files (multipart, purpose=batch), GET
/v1/files/{id} and /v1/files/{id}/content, POST /v1/batches, GET /v1/batches/{id}, GET /v1/batches
(list, newest first), POST /v1/batches/{id}/cancel. Every line of a batch is answered by the same
script as a synchronous call. Controls (attributes, change them any time): batch_delay_s (a batch
stays in_progress this long), line_status(custom_id, body, attempt) -> HTTP status of that line
(attempt = how many batches carried the custom_id before; default 200), expire_batches (indices of
batch creations that expire instead of completing), expire_done(custom_id) -> whether a line of an
expiring batch finished before the window closed, hang_up_creates (batch creations whose reply is
dropped after the batch was made: a client sees a connection error).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence
from urllib.parse import parse_qs, urlsplit


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
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 401: "invalid_api_key", 403: "permission_denied"}.get(
        status, "server_error"
    )
    code = code or kind
    return Reply(content=None, status=status, body={"error": {"message": message, "type": code, "code": code}}, **kw)


# -- replies a broken or hostile endpoint sends ----------------------------------------------------


def not_json_reply(text: str = "<html><body>502 Bad Gateway</body></html>", content_type: str = "text/html", **kw) -> Reply:
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
    return error_reply(429, "You exceeded your current quota, please check your plan and billing details.", code="insufficient_quota", **kw)


def server_error_reply(**kw) -> Reply:
    return error_reply(500, "The server had an error while processing your request.", **kw)


def hang_reply(seconds: float = 5.0, **kw) -> Reply:
    """Answers only after `seconds` (past the client's timeout in the tests that use it)."""
    return Reply(delay_s=seconds, **kw)


Script = Sequence[Reply] | Callable[[dict, int], Reply]


# -- what the server counts -------------------------------------------------------------------------


def gpt4o_image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's documented rule for GPT-4o-class models: detail low = 85; high (and auto) = scale to
    fit 2048x2048, then the shortest side to 768 px, then 85 + 170 per 512-px tile."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        f = 2048 / max(w, h)
        w, h = math.floor(w * f), math.floor(h * f)
    f = 768 / min(w, h)
    w, h = math.floor(w * f), math.floor(h * f)
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


_WORD = re.compile(r"\w+|[^\w\s]")


def count_prompt(req: dict, text_tokens: str = "bytes") -> dict:
    """{"image_tokens", "text_tokens", "overhead", "prompt_tokens", "images": [(w, h, detail)]}."""
    from PIL import Image

    images, text = [], 0
    for m in req.get("messages", []):
        parts = m["content"] if isinstance(m.get("content"), list) else [{"type": "text", "text": m.get("content") or ""}]
        for p in parts:
            if p.get("type") == "text":
                t = p.get("text", "")
                text += len(t.encode()) if text_tokens == "bytes" else len(_WORD.findall(t))
            elif p.get("type") == "image_url":
                url = p["image_url"]["url"]
                data = base64.b64decode(url.split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as img:
                    images.append((img.width, img.height, p["image_url"].get("detail", "auto")))
    image = sum(gpt4o_image_tokens(w, h, d) for w, h, d in images)
    overhead = 3 * len(req.get("messages", [])) + 3
    return {"image_tokens": image, "text_tokens": text, "overhead": overhead, "prompt_tokens": image + text + overhead, "images": images}


def guided_schema(req: dict) -> dict | None:
    """The JSON schema a vLLM-style request asks the output to follow, if any."""
    if isinstance(req.get("guided_json"), dict):
        return req["guided_json"]
    so = req.get("structured_outputs")
    if isinstance(so, dict) and isinstance(so.get("json"), dict):
        return so["json"]
    return None


def honour_schema(content: str | None, schema: dict) -> str:
    """What guided decoding would make of the scripted content: JSON valid for the judge schema."""
    allowed = schema["properties"]["score"]["enum"]
    try:
        obj = json.loads(content or "")
    except ValueError:
        obj = None
    score = obj.get("score") if isinstance(obj, dict) else None
    if score not in allowed or isinstance(score, bool):
        score = allowed[0]
    rationale = obj.get("rationale") if isinstance(obj, dict) and isinstance(obj.get("rationale"), str) else "guided"
    return json.dumps({"score": score, "rationale": rationale})


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name or None, bytes)} of a multipart/form-data body."""
    msg = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + raw)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        out[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


_TERMINAL = ("completed", "expired", "failed", "cancelled")


class FakeOpenAI:
    def __init__(self, script: Script | None = None, *, count_tokens: bool = False, text_tokens: str = "bytes"):
        self.script: Script = script if script is not None else [Reply()]
        self.count_tokens = count_tokens
        self.text_tokens = text_tokens
        self.calls = 0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.counted: list[dict] = []  # count_prompt() of every answered request (sync and batch lines)
        self.guided = 0  # requests answered under guided decoding
        self.lock = threading.RLock()  # re-entrant: a batch line is answered while the batch is locked
        # -- files and batches
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.uploads = 0
        self.batch_creates: list[dict] = []  # the bodies of POST /v1/batches that made a batch
        self.batch_line_calls = 0
        self.batch_retrieves = 0
        self.lines_seen: Counter = Counter()  # custom_id -> batches that carried it
        self.batch_delay_s = 0.0
        self.line_status: Callable[[str, dict, int], int] | None = None
        self.expire_batches: set[int] = set()
        self.expire_done: Callable[[str], bool] = lambda cid: False
        self.hang_up_creates: set[int] = set()
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

            def do_GET(self):
                status, body, ctype = fake._get(urlsplit(self.path))
                self._send(status, body, {}, ctype)

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                path = urlsplit(self.path).path.rstrip("/")
                if path.endswith("/files"):
                    status, body = fake._upload(self.headers.get("content-type", ""), raw)
                    self._send(status, body, {})
                    return
                if re.search(r"/batches(/[^/]+/cancel)?$", path):
                    status, body, hang_up = fake._batches_post(path, raw)
                    if hang_up:  # the batch exists, but its creator never hears so
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self._send(status, body, {})
                    return
                if not path.endswith("/chat/completions"):
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
                body = fake._completion(req, reply, f"chatcmpl-fake-{n}")
                self._send(reply.status, body, reply.headers, reply.content_type)

            def _send(self, status, body, headers, content_type="application/json"):
                data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
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

    def _completion(self, req: dict, reply: Reply, cid: str):
        """The body answering one chat request: the scripted reply, counted and guided as configured."""
        if reply.body is not None:
            return reply.body
        content, prompt_tokens = reply.content, reply.prompt_tokens
        schema = guided_schema(req)
        if schema is not None and reply.status == 200:
            content = honour_schema(content, schema)
            with self.lock:
                self.guided += 1
        if self.count_tokens and reply.status == 200:
            counted = count_prompt(req, self.text_tokens)
            prompt_tokens = counted["prompt_tokens"]
            with self.lock:
                self.counted.append(counted)
        body = {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        }
        if reply.usage:
            body["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": prompt_tokens + reply.completion_tokens,
            }
        for key in reply.drop:
            body.pop(key, None)
        if reply.truncate is not None:  # a complete HTTP body holding cut-off JSON
            body = json.dumps(body)[: reply.truncate]
        return body

    # -- files ----------------------------------------------------------------------------------
    def _new_file(self, data: bytes, purpose: str, filename: str) -> dict:
        with self.lock:
            fid = f"file-fake-{len(self.files)}"
            self.files[fid] = {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "data": data,
            }
            return self.files[fid]

    @staticmethod
    def _file_object(f: dict) -> dict:
        return {k: v for k, v in f.items() if k != "data"}

    def _upload(self, content_type: str, raw: bytes):
        try:
            form = parse_multipart(content_type, raw)
            purpose = form["purpose"][1].decode()
            filename, data = form["file"]
        except (KeyError, ValueError, AttributeError) as exc:
            return 400, {"error": {"message": f"bad upload: {exc!r}", "type": "invalid_request_error"}}
        if purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data", "evals"):
            return 400, {"error": {"message": f"unknown purpose {purpose!r}", "type": "invalid_request_error"}}
        with self.lock:
            self.uploads += 1
        return 200, self._file_object(self._new_file(data, purpose, filename or "upload.jsonl"))

    def _get(self, url):
        path = url.path.rstrip("/")
        m = re.search(r"/files/([^/]+)(/content)?$", path)
        if m:
            f = self.files.get(m.group(1))
            if f is None:
                return _not_found("file", m.group(1))
            if m.group(2):
                return 200, f["data"], "application/octet-stream"
            return 200, self._file_object(f), "application/json"
        m = re.search(r"/batches/([^/]+)$", path)
        if m:
            b = self.batches.get(m.group(1))
            if b is None:
                return _not_found("batch", m.group(1))
            with self.lock:
                self.batch_retrieves += 1
            return 200, self._advance(b), "application/json"
        if path.endswith("/batches"):
            q = parse_qs(url.query)
            limit = int(q.get("limit", ["20"])[0])
            ordered = sorted(self.batches.values(), key=lambda b: b["_n"], reverse=True)
            after = q.get("after", [None])[0]
            if after is not None:
                ids = [b["id"] for b in ordered]
                ordered = ordered[ids.index(after) + 1 :] if after in ids else []
            page = [self._advance(b) for b in ordered[:limit]]
            return (
                200,
                {
                    "object": "list",
                    "data": page,
                    "first_id": page[0]["id"] if page else None,
                    "last_id": page[-1]["id"] if page else None,
                    "has_more": len(ordered) > limit,
                },
                "application/json",
            )
        return 404, {"error": {"message": f"no route {url.path}"}}, "application/json"

    # -- batches --------------------------------------------------------------------------------
    def _batches_post(self, path: str, raw: bytes):
        m = re.search(r"/batches/([^/]+)/cancel$", path)
        if m:
            b = self.batches.get(m.group(1))
            if b is None:
                return 404, {"error": {"message": "no such batch"}}, False
            with self.lock:
                if b["status"] not in _TERMINAL:
                    b.update(status="cancelled", cancelled_at=int(time.time()))
            return 200, self._public(b), False
        try:
            req = json.loads(raw)
        except ValueError:
            return 400, {"error": {"message": "body is not JSON"}}, False
        bad = None
        f = self.files.get(req.get("input_file_id", ""))
        if f is None:
            bad = f"no file {req.get('input_file_id')!r}"
        elif f["purpose"] != "batch":
            bad = "the input file was not uploaded with purpose 'batch'"
        elif req.get("endpoint") not in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions"):
            bad = f"unsupported endpoint {req.get('endpoint')!r}"
        elif req.get("completion_window") != "24h":
            bad = "completion_window must be '24h'"
        if bad:
            return 400, {"error": {"message": bad, "type": "invalid_request_error", "param": None}}, False
        now = int(time.time())
        with self.lock:
            n = len(self.batch_creates)
            self.batch_creates.append(req)
            bid = f"batch_fake_{n}"
            lines, errors = self._read_lines(f["data"], req["endpoint"])
            for line in lines:
                self.lines_seen[line["custom_id"]] += 1
            self.batches[bid] = {
                "id": bid,
                "object": "batch",
                "endpoint": req["endpoint"],
                "errors": errors,
                "input_file_id": req["input_file_id"],
                "completion_window": "24h",
                "status": "failed" if errors else "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "expires_at": now + 86400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": now if errors else None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": req.get("metadata"),
                "_n": n,
                "_t0": time.monotonic(),
                "_lines": lines,
            }
        return 200, self._public(self.batches[bid]), n in self.hang_up_creates

    @staticmethod
    def _read_lines(data: bytes, endpoint: str):
        lines, seen = [], set()
        for i, text in enumerate(data.decode().splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                cid, method, url, body = line["custom_id"], line["method"], line["url"], line["body"]
            except (ValueError, KeyError, TypeError):
                return [], {"object": "list", "data": [{"code": "invalid_json_line", "line": i, "message": "not a batch request line"}]}
            if method != "POST" or url != endpoint or cid in seen or not isinstance(body, dict):
                return [], {
                    "object": "list",
                    "data": [{"code": "invalid_request", "line": i, "message": "bad method, url or duplicate custom_id"}],
                }
            seen.add(cid)
            lines.append(line)
        if not lines:
            return [], {"object": "list", "data": [{"code": "empty_file", "line": None, "message": "no requests"}]}
        return lines, None

    @staticmethod
    def _public(b: dict) -> dict:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _advance(self, b: dict) -> dict:
        """The batch as a retrieve sees it now: in_progress until batch_delay_s has passed, then
        completed (or expired), with its output and error files written once."""
        with self.lock:
            if b["status"] == "validating":
                b.update(status="in_progress", in_progress_at=int(time.time()))
            done = time.monotonic() - b["_t0"] >= self.batch_delay_s
            if b["status"] == "in_progress" and done:
                self._finish(b, expire=b["_n"] in self.expire_batches)
            return self._public(b)

    def _finish(self, b: dict, expire: bool) -> None:
        out, err = [], []
        for line in b["_lines"]:
            cid, body = line["custom_id"], line["body"]
            rid = f"batch_req_{b['_n']}_{len(out) + len(err)}"
            if expire and not self.expire_done(cid):
                err.append(
                    {
                        "id": rid,
                        "custom_id": cid,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
                continue
            attempt = self.lines_seen[cid] - 1
            status = self.line_status(cid, body, attempt) if self.line_status else 200
            if status != 200:
                err.append(
                    {
                        "id": rid,
                        "custom_id": cid,
                        "error": None,
                        "response": {
                            "status_code": status,
                            "request_id": f"req_{rid}",
                            "body": {
                                "error": {
                                    "message": f"fake line failure {status}",
                                    "type": "server_error" if status >= 500 else "invalid_request_error",
                                    "code": None,
                                }
                            },
                        },
                    }
                )
                continue
            n = self.batch_line_calls
            self.batch_line_calls += 1
            completion = self._completion(body, self._reply_for(body, n), f"chatcmpl-batch-{n}")
            out.append(
                {
                    "id": rid,
                    "custom_id": cid,
                    "error": None,
                    "response": {"status_code": 200, "request_id": f"req_{rid}", "body": completion},
                }
            )
        now = int(time.time())

        def to_file(rows, name):
            if not rows:
                return None
            data = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
            return self._new_file(data, "batch_output", name)["id"]

        b.update(
            status="expired" if expire else "completed",
            output_file_id=to_file(out, f"{b['id']}_output.jsonl"),
            error_file_id=to_file(err, f"{b['id']}_error.jsonl"),
            finalizing_at=now,
            request_counts={"total": len(b["_lines"]), "completed": len(out), "failed": len(err)},
            **({"expired_at": now} if expire else {"completed_at": now}),
        )


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


def _not_found(kind: str, name: str):
    """The API's 404 for an unknown file or batch id."""
    return 404, {"error": {"message": f"no {kind} {name}", "type": "invalid_request_error"}}, "application/json"
