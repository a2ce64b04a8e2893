"""A fault-injecting OpenAI-compatible server for tests: 127.0.0.1 only, bounded, and it
stops itself.

Each path (`/v1/models`, `/v1/completions`, `/v1/chat/completions`) answers from a list
of faults, one per request, the last one repeating: a good answer, an HTTP status
(500s, 429 with Retry-After), garbage, a body of the wrong shape, a slow drip, a reset
connection or a hang. Every request is recorded (path, time, JSON body), so a test can
assert that a retry happened, how long the backoff was, or that a 400 was sent once.

    with FaultServer({"/v1/completions": [status(500), completion("Hi.")]}) as server:
        ...  # server.url is the API root, server.hits the requests seen
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_REQUEST_BYTES = 1 << 20  # a test's request is small; anything bigger is refused


@dataclass
class Fault:
    """One answer. `kind`: reply (status, headers, body after `delay` seconds, in `chunks`
    pieces `drip` seconds apart), reset (close the connection without an answer) or hang
    (hold it until the server stops)."""

    kind: str = "reply"
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    chunks: int = 1


def reply(obj, status: int = 200, **kw) -> Fault:
    """A JSON body (any value: a list, null, a wrong shape) or raw bytes."""
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return Fault(status=status, body=body, headers=headers, **kw)


def status(code: int, message: str = "injected fault", **kw) -> Fault:
    return reply({"error": {"message": message, "type": "fault", "code": code}}, code, **kw)


def completion(text="Hello there.", model="smol", finish="stop", **kw) -> Fault:
    usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    choice = {"index": 0, "text": text, "finish_reason": finish}
    body = {"id": "c", "object": "text_completion", "created": 0, "model": model}
    return reply({**body, "choices": [choice], "usage": usage}, **kw)


def chat(text="Hello there.", model="smol", finish="stop", **kw) -> Fault:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": finish}
    body = {"id": "c", "object": "chat.completion", "created": 0, "model": model}
    return reply({**body, "choices": [choice]}, **kw)


def models(*names: str) -> Fault:
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "test"} for n in names]
    return reply({"object": "list", "data": data})


RESET = Fault(kind="reset")
HANG = Fault(kind="hang")

DEFAULTS = {
    "/v1/models": [models("smol")],
    "/v1/completions": [completion()],
    "/v1/chat/completions": [chat()],
}


@dataclass
class Hit:
    path: str
    at: float  # time.monotonic()
    body: dict | None


class FaultServer:
    """The server: `routes` maps a path to its faults (the defaults answer well). It stops
    on leaving the `with` block, or after `lifetime` seconds whatever the test does."""

    def __init__(self, routes: dict | None = None, lifetime: float = 60.0):
        self.routes = {**DEFAULTS, **(routes or {})}
        self.hits: list[Hit] = []
        self.lifetime = lifetime
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def hits_on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    def _next(self, path: str, body) -> Fault | None:
        with self._lock:
            self.hits.append(Hit(path, time.monotonic(), body))
            faults = self.routes.get(path)
            if not faults:
                return None
            return faults.pop(0) if len(faults) > 1 else faults[0]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                size = min(int(self.headers.get("Content-Length") or 0), MAX_REQUEST_BYTES)
                raw = self.rfile.read(size) if size else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                fault = server._next(self.path.split("?")[0], body)
                if fault is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault.kind == "reset":
                    # SO_LINGER 0: close() sends RST, the client sees a connection reset
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault.kind == "hang":
                    server.stopping.wait(server.lifetime)
                    self.close_connection = True
                    return
                if fault.delay and server.stopping.wait(fault.delay):
                    return
                self.send_response(fault.status)
                for k, v in fault.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(fault.body)))
                self.end_headers()
                step = max(1, -(-len(fault.body) // max(1, fault.chunks)))
                for i in range(0, len(fault.body), step):
                    if i and fault.drip and server.stopping.wait(fault.drip):
                        return
                    self.wfile.write(fault.body[i : i + step])
                    self.wfile.flush()

            def do_GET(self):
                try:
                    self._answer()
                except OSError:  # the client went away (a timeout on its side)
                    self.close_connection = True

            do_POST = do_GET

        return Handler

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            self._httpd.shutdown()
            self._httpd.server_close()

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.stop()
