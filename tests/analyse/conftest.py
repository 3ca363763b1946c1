"""A scripted LLM HTTP server on a free loopback port: real HTTP, no mocks of our code."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class ScriptedLLM:
    """Answers OpenAI- and Anthropic-style requests from a queue of scripted replies.

    Each reply is ``(status, text)``; the last one repeats when the queue runs dry.
    Every request body is recorded.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = [(200, '{"insights": []}')]
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def script(self, *replies: tuple[int, str]) -> None:
        with self.lock:
            self.replies = list(replies)

    def next_reply(self) -> tuple[int, str]:
        with self.lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def _handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            llm.requests.append(body)
            llm.paths.append(self.path)
            llm.headers.append({k.lower(): v for k, v in self.headers.items()})
            status, text = llm.next_reply()
            if status != 200:
                self._send(status, {"error": {"message": "scripted failure"}})
                return
            anthropic = self.path.endswith("/v1/messages")
            if body.get("stream"):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for k in range(0, len(text), 7):
                    piece = text[k : k + 7]
                    if anthropic:
                        event = {
                            "type": "content_block_delta",
                            "delta": {"type": "text_delta", "text": piece},
                        }
                    else:
                        event = {"choices": [{"delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                if not anthropic:
                    self.wfile.write(b"data: [DONE]\n\n")
                return
            if anthropic:
                self._send(
                    200,
                    {
                        "content": [{"type": "text", "text": text}],
                        "usage": {"input_tokens": 111, "output_tokens": 22},
                    },
                )
            else:
                self._send(
                    200,
                    {
                        "choices": [{"message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 111, "completion_tokens": 22},
                    },
                )

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def llm_server() -> Iterator[tuple[ScriptedLLM, str]]:
    llm = ScriptedLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(llm))  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield llm, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
