"""A fault-injecting local HTTP server that speaks the Anthropic Messages API.

Real clients (the ``anthropic`` SDK, LangChain's ``ChatAnthropic``) are pointed at it with
``base_url=srv.url``. A raw asyncio HTTP/1.1 server runs in a background thread: sleeping
requests cost one coroutine each, so hundreds of requests held for latency add no CPU.

    with MessagesServer(faults=Faults(latency_s=0.5, rate_429=0.1, seed=1)) as srv:
        client = anthropic.Anthropic(base_url=srv.url, api_key="fake")

What it answers: by default, the single-turn ``default_responder``; any ``responder``
(a function of the request body) instead, such as ``scripted_agent.ScriptedAgent``, which
plays whole conversations from the tool results it is sent (``--agent`` on the command
line). A responder that raises ``ResponderRefused`` gets the API's 400, never retried;
any other exception is the server's 500. Every request is recorded (``requests``, with
credentials redacted); ``tool_results()`` lists the tool results each one carried.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import random
import threading
import time
from collections.abc import Collection
from http import HTTPStatus
from typing import Any, NamedTuple, Self

from tooltrial.testing.responders import (
    Responder,
    ResponderRefused,
    default_responder,
    placeholder,
    sent_tool_results,
    text_of,
)
from tooltrial.testing.scripted_agent import ScriptedAgent

__all__ = [  # the responders' names are re-exported: tests import them from here
    "Faults",
    "MessagesServer",
    "ReceivedToolResult",
    "RecordedRequest",
    "Responder",
    "ResponderRefused",
    "default_responder",
    "input_tokens",
    "main",
    "placeholder",
    "sent_tool_results",
    "text_of",
]

FAULT_KINDS = ("429", "529", "500", "timeout", "drop", "malformed")
REDACTED_HEADERS = frozenset({"x-api-key", "authorization", "cookie"})
OUTCOMES = {200: "ok", 400: "invalid", 401: "unauthorized", 404: "not_found"}
PROMPT_KEYS = ("system", "messages", "tools", "tool_choice")  # what input_tokens counts


@dataclasses.dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Random draws are seeded per request number, so a
    run is reproducible whatever order concurrent requests arrive in."""

    latency_s: float = 0.0
    latency_jitter_s: float = 0.0  # uniform extra latency in [0, jitter)
    latency_ramp_s: float = 0.0  # drift: request n waits (n - 1) × ramp more than request 1
    latency_ramp_max_s: float = 5.0  # ... but never more than this (bounded)
    rate_429: float = 0.0
    rate_529: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    rate_malformed: float = 0.0
    retry_after_s: float = 1.0
    timeout_hold_s: float = 60.0  # must exceed the client's timeout (SDK default: 600 s!)
    seed: int = 0
    on_requests: dict[int, str] = dataclasses.field(default_factory=dict)  # 1-based number
    rpm_limit: int | None = None  # sliding 60 s window over admitted requests

    def __post_init__(self) -> None:
        if self.latency_ramp_s < 0 or not 0 <= self.latency_ramp_max_s <= 60:
            raise ValueError("latency_ramp_s must be >= 0 and latency_ramp_max_s in [0, 60]")
        rates = [getattr(self, f"rate_{k}") for k in FAULT_KINDS]
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be >= 0 and sum to <= 1")
        bad = {v for v in self.on_requests.values() if v not in (*FAULT_KINDS, "ok")}
        if bad:
            raise ValueError(f"unknown fault kinds {sorted(bad)}; use {FAULT_KINDS} or 'ok'")

    def draw(self, number: int) -> tuple[str, float]:
        """The fault kind ("ok" for none) and latency for request `number` (1-based; with
        a ramp, latency drifts upward over the run as a loaded server's does)."""
        rng = random.Random(f"{self.seed}:{number}")
        latency = self.latency_s + rng.random() * self.latency_jitter_s
        latency += min(self.latency_ramp_s * (number - 1), self.latency_ramp_max_s)
        forced = self.on_requests.get(number)
        if forced:
            return forced, latency
        u, edge = rng.random(), 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self, f"rate_{kind}")
            if u < edge:
                return kind, latency
        return "ok", latency


class RecordedRequest(NamedTuple):
    number: int
    path: str
    headers: dict[str, str]  # lowercased names; credentials are "***"
    body: Any  # parsed JSON, or None
    outcome: str  # ok | 429 | 529 | 500 | timeout | drop | malformed | rate_limited | ...


class ReceivedToolResult(NamedTuple):
    """A ``tool_result`` block as the server received it, in the last message of a request
    (the results the client just sent back; earlier ones are history)."""

    number: int  # the request that carried it
    tool_use_id: str
    content: str
    is_error: bool
    outcome: str  # the request's outcome: a result resent after a fault appears again


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


FAULT_ERRORS = {
    "429": (429, "rate_limit_error", "Number of requests has exceeded your rate limit."),
    "529": (529, "overloaded_error", "Overloaded"),
    "500": (500, "api_error", "Internal server error"),
}
JSON = {"content-type": "application/json"}


def _json_reply(status: int, obj: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(obj).encode(), {**JSON, **headers})


def _error(status: int, kind: str, message: str, **headers: str) -> Reply:
    return _json_reply(
        status, {"type": "error", "error": {"type": kind, "message": message}}, **headers
    )


def _tokens(obj: Any) -> int:
    return max(1, len(json.dumps(obj, separators=(",", ":"), sort_keys=True)) // 4)


def input_tokens(body: dict[str, Any]) -> int:
    """Deterministic token estimate of a request's prompt; count_tokens agrees with usage."""
    return _tokens({k: body[k] for k in PROMPT_KEYS if k in body})


def _sse(message: dict[str, Any]) -> bytes:
    """The streaming event sequence for a finished message (one delta per block)."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"message": start})]
    for i, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            head, delta = (
                {**block, "input": {}},
                {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
            )
        else:
            head, delta = (
                {**block, "text": ""},
                {"type": "text_delta", "text": block.get("text", "")},
            )
        events += [
            ("content_block_start", {"index": i, "content_block": head}),
            ("content_block_delta", {"index": i, "delta": delta}),
            ("content_block_stop", {"index": i}),
        ]
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    # Like the live API, message_delta carries the full usage: LangChain reads input_tokens here.
    events += [("message_delta", {"delta": stop, "usage": message["usage"]}), ("message_stop", {})]
    return b"".join(
        f"event: {e}\ndata: {json.dumps({'type': e, **d})}\n\n".encode() for e, d in events
    )


# ---------------------------------------------------------------- the server
class MessagesServer:
    """Anthropic Messages API double on 127.0.0.1, bounded by max_requests / max_seconds."""

    def __init__(
        self,
        faults: Faults | None = None,
        reject_params: dict[str, set[str]] | None = None,
        responder: Responder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_requests: int = 100_000,
        max_seconds: float = 600.0,
        api_keys: Collection[str] | None = None,
    ) -> None:
        """``api_keys``: when given, a request whose key is not one of them gets the API's
        401 ``authentication_error`` (by default any non-empty key is accepted)."""
        if host != "127.0.0.1":  # a fault injector must never be reachable off this machine
            raise ValueError(f"MessagesServer binds 127.0.0.1 only, not {host!r}")
        self.faults = faults or Faults()
        self.reject_params = reject_params or {}
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.responder = responder or default_responder
        self.port, self.max_requests, self.max_seconds = port, max_requests, max_seconds
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._count = 0
        self._admitted: collections.deque[float] = collections.deque()  # rpm window
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._draining = False
        self._inflight = 0
        self.peak_inflight = 0  # most requests held at once: shows a client's concurrency

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="messages-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop and self._stop_event and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                self._loop.call_soon_threadsafe(self._stop_event.set)
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (it stops itself at max_requests / max_seconds)."""
        if self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def stats(self) -> dict[str, int]:
        return dict(collections.Counter(r.outcome for r in self.requests))

    def tool_results(self) -> list[ReceivedToolResult]:
        """Every tool result the server received, request by request (a request resent
        after a fault carries its results again: tell them apart by ``outcome``)."""
        return [
            ReceivedToolResult(
                r.number,
                str(b.get("tool_use_id", "")),
                text_of(b.get("content", "")),
                bool(b.get("is_error", False)),
                r.outcome,
            )
            for r in self.requests
            if r.path == "/v1/messages"
            for b in sent_tool_results(r.body)
        ]

    # -- internals
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surface bind errors to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
        conns: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            conns.add(task)
            try:
                await self._serve_connection(reader, writer)
            except (ConnectionError, ValueError, EOFError, asyncio.LimitOverrunError):
                pass  # the client went away or sent garbage; nothing to answer
            except asyncio.CancelledError:
                pass  # we cancelled it to stop; ending "cancelled" makes asyncio log an error
            finally:
                conns.discard(task)
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        deadline = self._loop.time() + self.max_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), self.max_seconds)
        server.close()
        deadline = min(deadline, self._loop.time() + 30)  # a held "timeout" must not pin us
        while self._draining and self._inflight and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in list(conns):
            task.cancel()
        await asyncio.gather(*conns, return_exceptions=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:  # HTTP/1.1 keep-alive: one request after another on this socket
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # clean close between requests
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":  # curl, for big bodies
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            raw = await self._read_body(reader, headers)
            self._inflight += 1  # only touched on the loop thread
            self.peak_inflight = max(self.peak_inflight, self._inflight)
            try:
                reply = await self._handle(method, target, headers, raw)
                if reply is not None:
                    await self._write(writer, reply, headers)
            finally:
                self._inflight -= 1
            if reply is None or headers.get("connection", "").lower() == "close":
                return  # drop / timeout / client asked: close without (another) response
            if self._stop_event is None or self._stop_event.is_set():
                return

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: Reply, headers: dict[str, str]) -> None:
        keep = "close" if headers.get("connection", "").lower() == "close" else "keep-alive"
        reason = "Site Overloaded" if reply.status == 529 else HTTPStatus(reply.status).phrase
        lines = [f"HTTP/1.1 {reply.status} {reason}", f"content-length: {len(reply.body)}"]
        lines += [f"connection: {keep}", *(f"{k}: {v}" for k, v in reply.headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
        await writer.drain()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")  # trailer terminator
            return b"".join(c[:-2] for c in chunks)
        return await reader.readexactly(int(headers.get("content-length", "0") or 0))

    async def _handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> Reply | None:
        path, _, query = target.partition("?")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self._count += 1
            number, faults = self._count, self.faults
        kind, latency = faults.draw(number)
        if number > self.max_requests or self._draining:
            kind, reply = "over_limit", None  # the server is shutting down: hang up
        elif number not in faults.on_requests and (limited := self._rate_limit(faults)):
            kind, reply = "rate_limited", limited  # the limiter answers before random faults
        elif kind != "ok":
            reply = self._fault(kind, faults)
        else:
            reply = await self._route(method, path, query, headers, raw, body, number)
            kind = "dropped" if reply is None else OUTCOMES.get(reply.status, "error")
        safe = {k: ("***" if k in REDACTED_HEADERS else v) for k, v in headers.items()}
        with self._lock:
            self._records.append(RecordedRequest(number, path, safe, self._kept(path, body), kind))
        if number == self.max_requests and self._stop_event:
            self._draining = True  # finish what is in flight, then stop
            self._stop_event.set()
        if kind == "timeout":
            await asyncio.sleep(faults.timeout_hold_s)
        elif latency > 0 and kind != "drop":
            await asyncio.sleep(latency)
        return reply

    def _rate_limit(self, faults: Faults) -> Reply | None:
        """Sliding-window rpm limiter; admits (and remembers) the request when under it."""
        if faults.rpm_limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._admitted and self._admitted[0] <= now - 60:
                self._admitted.popleft()
            if len(self._admitted) < faults.rpm_limit:
                self._admitted.append(now)
                return None
            wait = max(1, math.ceil(self._admitted[0] + 60 - now))
        return _error(
            429,
            "rate_limit_error",
            f"This request would exceed the rate limit of {faults.rpm_limit} requests per minute.",
            **{
                "retry-after": str(wait),
                "anthropic-ratelimit-requests-limit": str(faults.rpm_limit),
                "anthropic-ratelimit-requests-remaining": "0",
            },
        )

    @staticmethod
    def _fault(kind: str, faults: Faults) -> Reply | None:
        if kind in FAULT_ERRORS:
            status, error_kind, message = FAULT_ERRORS[kind]
            extra = {"retry-after": f"{faults.retry_after_s:g}"} if kind == "429" else {}
            return _error(status, error_kind, message, **extra)
        if kind == "malformed":  # a 200 whose JSON body was cut off mid-way
            return Reply(200, b'{"id": "msg_x", "type": "message", "content": [{"ty', JSON)
        return None  # drop, timeout

    async def _route(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        raw: bytes,
        body: Any,
        number: int,
    ) -> Reply | None:
        """The answer to a request that drew no fault; None hangs up without one. A
        subclass serving more of an API (``batch_server``) routes here."""
        return self._respond(method, path, headers, body, number)

    def _kept(self, path: str, body: Any) -> Any:
        """What of a request's body ``requests`` keeps (a subclass may keep less)."""
        return body

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: Any, number: int
    ) -> Reply:
        if method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return _error(404, "not_found_error", f"Not found: {method} {path}")
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if not key:
            return _error(401, "authentication_error", "x-api-key header is required")
        if self.api_keys is not None and key not in self.api_keys:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "Request body must be a JSON object")
        required = (
            ("model", "messages")
            if path.endswith("count_tokens")
            else ("model", "messages", "max_tokens")
        )
        for field in required:
            if field not in body:
                return _error(400, "invalid_request_error", f"{field}: Field required")
        for param in sorted(self.reject_params.get(body["model"], ())):
            if param in body:
                msg = f"{param} is not supported for this model. Remove it or use the default."
                return _error(400, "invalid_request_error", msg)
        if path.endswith("count_tokens"):
            return _json_reply(200, {"input_tokens": input_tokens(body)})
        try:
            message = self._message(body, number)
        except ResponderRefused as exc:
            return _error(400, "invalid_request_error", str(exc))
        except Exception as exc:  # a broken responder is the server's fault, like a real 500
            return _error(500, "api_error", f"responder failed: {exc!r}")
        rid = {"request-id": f"req_{number:020d}"}
        if body.get("stream"):
            return Reply(200, _sse(message), {"content-type": "text/event-stream", **rid})
        return _json_reply(200, message, **rid)

    def _message(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        out = self.responder(body)
        content = [
            {**b, "id": b.get("id") or f"toolu_{number:012d}_{i}"}
            if b.get("type") == "tool_use"
            else b
            for i, b in enumerate(out["content"])
        ]
        stop_reason, output = out.get("stop_reason", "end_turn"), _tokens(content)
        if output > body["max_tokens"] and stop_reason != "tool_use":  # cut the text off
            content = [{"type": "text", "text": text_of(content)[: body["max_tokens"] * 4]}]
            stop_reason, output = "max_tokens", body["max_tokens"]
        usage = out.get("usage") or {"input_tokens": input_tokens(body), "output_tokens": output}
        return {
            "id": f"msg_{number:020d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m tooltrial.testing.messages_server",
        description="Anthropic Messages API test server",
    )
    p.add_argument("--port", type=int, default=0)
    fields = [f for f in dataclasses.fields(Faults) if f.name != "on_requests"]
    for f in fields:  # --latency, --latency-jitter, --rate-429, --retry-after, --rpm-limit, ...
        kind = int if f.name in ("seed", "rpm_limit") else float
        flag = "--" + f.name.removesuffix("_s").replace("_", "-")
        p.add_argument(flag, dest=f.name, type=kind, default=f.default)
    p.add_argument("--max-requests", type=int, default=100_000)
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument(
        "--agent",
        metavar="JSON_OR_FILE",
        help="play whole conversations from these scripted-agent policies (JSON, or a JSON "
        "file; default: $TOOLTRIAL_SERVER_AGENT); see tooltrial.testing.scripted_agent",
    )
    a = p.parse_args(argv)
    faults = Faults(**{f.name: getattr(a, f.name) for f in fields})
    try:
        agent = ScriptedAgent.from_json(a.agent) if a.agent else ScriptedAgent.from_env()
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    srv = MessagesServer(
        faults,
        responder=agent,
        port=a.port,
        max_requests=a.max_requests,
        max_seconds=a.max_seconds,
    )
    with srv:
        print(f"Messages API test server on {srv.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            srv.wait()
    print(json.dumps(srv.stats()))


if __name__ == "__main__":
    main()
