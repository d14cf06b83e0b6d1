"""A local stand-in for the LangSmith API, for tests of tracing with the real ``langsmith``
client (pointed at it with ``LANGSMITH_ENDPOINT=srv.url``).

It takes what the client sends when tracing, and what LangSmith's pytest integration
needs around it:

- run ingestion: ``POST /runs/multipart`` (plain or zstd-compressed), ``POST /runs/batch``,
  ``POST /runs`` and ``PATCH /runs/{id}``; posts and patches of a run are merged into one
  record in ``runs``, and every operation is kept in ``operations`` (to see duplicates);
- ``GET /info``, datasets, examples, sessions (projects), dataset tags and feedback,
  just enough to keep state between calls.

``fail_status=500`` answers every request (``/info`` included) with that status.
It binds 127.0.0.1 only, serves at most ``max_requests`` and shuts down after
``max_lifetime_s``. Credentials in request headers are recorded as ``***``.

    with LangSmithServer() as srv:
        os.environ["LANGSMITH_ENDPOINT"] = srv.url
        ...
        assert len(srv.runs) == 120
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import json
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REDACTED = frozenset({"x-api-key", "authorization", "cookie"})
INFO = {
    "version": "0.10.0",
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
    },
    "instance_flags": {"zstd_compression_enabled": True},
}
TENANT = "00000000-0000-4000-8000-000000000001"


@dataclass(frozen=True)
class Operation:
    """One post or patch of a run, as received."""

    kind: str  # "post" | "patch"
    run: dict[str, Any]
    endpoint: str


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    status: int
    headers: dict[str, str]  # lowercased names; credentials are "***"
    body: bytes  # decompressed


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class _Store:
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, kind: str, run: dict[str, Any], endpoint: str) -> None:
        self.operations.append(Operation(kind, run, endpoint))
        record = self.runs.setdefault(str(run["id"]), {})
        record.update({k: v for k, v in run.items() if v is not None})


Answer = tuple[int, Any]
"""(HTTP status, JSON-able reply)."""


class LangSmithServer:
    def __init__(
        self,
        *,
        fail_status: int | None = None,
        max_requests: int = 20_000,
        max_lifetime_s: float = 900.0,
    ) -> None:
        self.fail_status = fail_status
        self.max_requests, self.max_lifetime_s = max_requests, max_lifetime_s
        self.received: list[Received] = []
        self._store = _Store()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # --- what was received ----------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._store.runs.items()}

    @property
    def operations(self) -> list[Operation]:
        with self._lock:
            return list(self._store.operations)

    @property
    def feedback(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._store.feedback)

    @property
    def examples(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._store.examples.items()}

    @property
    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._store.sessions.values())

    # --- lifetime --------------------------------------------------------------------

    def start(self) -> LangSmithServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LangSmithServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- handling --------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, ctype: str
    ) -> Answer:
        """(status, JSON-able reply) for one request."""
        if self.fail_status:
            return self.fail_status, {"detail": "injected failure"}
        if len(self.received) >= self.max_requests:
            return 503, {"detail": "request limit of the test server reached"}
        parts = [p for p in path.split("/") if p]
        with self._lock:
            return self._route(method, parts, query, body, ctype)

    def _route(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes, ctype: str
    ) -> Answer:
        store = self._store
        head = parts[0] if parts else ""
        if method == "GET" and parts == ["info"]:
            return 200, INFO
        if head == "runs":
            return self._runs(method, parts, body, ctype)
        if head == "datasets":
            return self._datasets(method, parts, query, body)
        if head == "sessions":
            return self._sessions(method, parts, query, body)
        if head == "examples":
            return self._examples(method, parts, body)
        if head == "feedback" and method == "POST":
            item = json.loads(body or b"{}")
            store.feedback.append(item)
            return 200, {"id": item.get("id") or str(uuid.uuid4())}
        return 404, {"detail": f"not served here: {method} /{'/'.join(parts)}"}

    def _runs(self, method: str, parts: list[str], body: bytes, ctype: str) -> Answer:
        store = self._store
        if method == "POST" and parts == ["runs", "multipart"]:
            for kind, run in _multipart_runs(body, ctype):
                if kind == "feedback":
                    store.feedback.append(run)
                else:
                    store.apply(kind, run, "multipart")
            return 202, {}
        if method == "POST" and parts == ["runs", "batch"]:
            batch = json.loads(body)
            for kind in ("post", "patch"):
                for run in batch.get(kind) or []:
                    store.apply(kind, run, "batch")
            return 202, {}
        if method == "POST" and parts == ["runs"]:
            store.apply("post", json.loads(body), "runs")
            return 202, {}
        if method == "PATCH" and len(parts) == 2:
            store.apply("patch", {**json.loads(body), "id": parts[1]}, "runs")
            return 202, {}
        if method == "GET" and len(parts) == 2 and parts[1] in store.runs:
            return 200, store.runs[parts[1]]
        return 404, {"detail": "no such run"}

    def _datasets(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> Answer:
        store = self._store
        if method == "GET" and len(parts) == 1:
            name = query.get("name")
            return 200, [d for d in store.datasets.values() if name in (None, d["name"])]
        if method == "POST" and len(parts) == 1:
            item = json.loads(body)
            if any(d["name"] == item.get("name") for d in store.datasets.values()):
                return 409, {"detail": "dataset exists"}
            dataset = {"id": str(uuid.uuid4()), "created_at": _now(), "modified_at": _now()}
            dataset |= {k: item.get(k) for k in ("name", "description", "metadata", "data_type")}
            store.datasets[dataset["id"]] = dataset
            return 200, dataset
        if len(parts) >= 2 and parts[1] in store.datasets:
            if len(parts) == 2 and method == "GET":
                return 200, store.datasets[parts[1]]
            if parts[2:] == ["tags"] and method == "PUT":
                return 200, {}
        return 404, {"detail": "no such dataset"}

    def _sessions(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> Answer:
        store = self._store
        if method == "GET" and len(parts) == 1:
            name = query.get("name")
            found = [s for s in store.sessions.values() if name in (None, s["name"])]
            return 200, found[: int(query.get("limit", 100))]
        if method == "POST" and len(parts) == 1:
            item = json.loads(body)
            if any(s["name"] == item.get("name") for s in store.sessions.values()):
                return 409, {"detail": "session exists"}
            session = {"id": item.get("id") or str(uuid.uuid4()), "tenant_id": TENANT}
            session |= {"start_time": _now(), "name": item.get("name")}
            session |= {k: item.get(k) for k in ("description", "extra", "reference_dataset_id")}
            store.sessions[session["id"]] = session
            return 200, session
        if len(parts) == 2 and parts[1] in store.sessions:
            session = store.sessions[parts[1]]
            if method == "PATCH":
                session.update({k: v for k, v in json.loads(body).items() if v is not None})
            return 200, session
        return 404, {"detail": "no such session"}

    def _examples(self, method: str, parts: list[str], body: bytes) -> Answer:
        store = self._store
        if method == "POST" and len(parts) == 1:
            item = json.loads(body)
            example = {"id": item.get("id") or str(uuid.uuid4()), "modified_at": _now()}
            example |= {k: item.get(k) for k in ("dataset_id", "inputs", "outputs", "metadata")}
            example["created_at"] = item.get("created_at") or _now()
            store.examples[str(example["id"])] = example
            return 200, example
        if len(parts) == 2 and parts[1] in store.examples:
            example = store.examples[parts[1]]
            if method == "PATCH":
                example.update({k: v for k, v in json.loads(body).items() if v is not None})
                example["modified_at"] = _now()
            return 200, example
        return 404, {"detail": "no such example"}


def _multipart_runs(body: bytes, ctype: str) -> list[tuple[str, dict[str, Any]]]:
    """The runs in a multipart ingest body: parts named ``post.<id>`` hold the run, parts
    named ``post.<id>.<field>`` (inputs, outputs, extra, ...) one field of it."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    )
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        kind, _, rest = str(name).partition(".")
        run_id, _, key = rest.partition(".")
        if kind == "attachment":
            continue
        payload = part.get_payload(decode=True)
        value = json.loads(payload if isinstance(payload, bytes) and payload else b"null")
        record = runs.setdefault((kind, run_id), {"id": run_id})
        if key:
            record[key] = value
        else:
            record.update(value)
    return [(kind, run) for (kind, _), run in runs.items()]


class _Handler(BaseHTTPRequestHandler):
    owner: LangSmithServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if (self.headers.get("content-encoding") or "").lower() == "zstd":
            import zstandard

            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        ctype = self.headers.get("content-type") or ""
        try:
            status, reply = self.owner.handle(self.command, url.path, query, raw, ctype)
        except Exception as exc:  # a bug here must show as a 500, not a hung client
            status, reply = 500, {"detail": f"test server: {type(exc).__name__}: {exc}"}
        headers = {
            k.lower(): ("***" if k.lower() in REDACTED else v) for k, v in self.headers.items()
        }
        self.owner.received.append(Received(self.command, url.path, status, headers, raw))
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def free_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
