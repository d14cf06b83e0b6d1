"""The batch API test servers, through the providers' own SDKs: every endpoint tooltrial
uses (and cancel), and each fault the way a client meets it."""

from __future__ import annotations

import json
import threading

import anthropic
import openai
import pytest

from tooltrial.testing.batch_server import AnthropicBatchServer, BatchFaults, OpenAIBatchServer

KEY = "sk-test-servers-not-a-real-key"
PARAMS = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def requests(n: int, prefix: str = "c") -> list[dict]:
    return [
        {"custom_id": f"{prefix}{i}", "params": {**PARAMS, "metadata": {"user_id": str(i)}}}
        for i in range(n)
    ]


def anthropic_client(srv: AnthropicBatchServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.url, api_key=KEY, max_retries=0, timeout=10)


def test_anthropic_batches_create_retrieve_results_list_cancel() -> None:
    with AnthropicBatchServer(batch_faults=BatchFaults(hold=True)) as srv:
        client = anthropic_client(srv)
        first = client.messages.batches.create(requests=requests(3))
        second = client.messages.batches.create(requests=requests(2, "d"))
        assert first.processing_status == "in_progress" and first.request_counts.processing == 3
        listed = list(client.messages.batches.list(limit=1))  # pages of one, newest first
        assert [b.id for b in listed] == [second.id, first.id]
        canceled = client.messages.batches.cancel(second.id)
        assert canceled.processing_status in ("canceling", "ended")
        srv.release()
        done = client.messages.batches.retrieve(first.id)
        assert done.processing_status == "ended" and done.request_counts.succeeded == 3
        lines = list(client.messages.batches.results(first.id))
        assert sorted(r.custom_id for r in lines) == ["c0", "c1", "c2"]
        assert all(r.result.type == "succeeded" for r in lines)
        assert {r.result.type for r in client.messages.batches.results(second.id)} == {"canceled"}
        assert srv.created_ids == {"c0": 1, "c1": 1, "c2": 1, "d0": 1, "d1": 1}


def test_anthropic_item_faults_then_success_on_the_next_submission() -> None:
    with AnthropicBatchServer(batch_faults=BatchFaults(errored=0.5, expired=0.5)) as srv:
        client = anthropic_client(srv)
        batch = client.messages.batches.create(requests=requests(4))
        kinds = {r.result.type for r in client.messages.batches.results(batch.id)}
        assert kinds <= {"errored", "expired"} and kinds
        again = client.messages.batches.create(requests=requests(4, "again"))
        assert {r.result.type for r in client.messages.batches.results(again.id)} == {"succeeded"}


def test_anthropic_polls_fail_then_pass_and_a_lost_create_still_makes_the_batch() -> None:
    faults = BatchFaults(poll_500=2, lose_create=frozenset({1}))
    with AnthropicBatchServer(batch_faults=faults) as srv:
        client = anthropic_client(srv)
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.batches.create(requests=requests(2))
        (made,) = srv.batches  # made, though its answer never came
        for _ in range(2):
            with pytest.raises(anthropic.InternalServerError):
                client.messages.batches.retrieve(made.id)
        assert client.messages.batches.retrieve(made.id).processing_status == "ended"


def test_anthropic_results_stream_holds_after_some_lines() -> None:
    with AnthropicBatchServer(batch_faults=BatchFaults(hold_results_after=2)) as srv:
        client = anthropic.Anthropic(base_url=srv.url, api_key=KEY, max_retries=0, timeout=2)
        batch = client.messages.batches.create(requests=requests(5))
        read: list[str] = []
        with pytest.raises(Exception) as stalled:  # the SDK's stream raises its HTTP library's
            for line in client.messages.batches.results(batch.id):
                read.append(line.custom_id)
        assert "Timeout" in type(stalled.value).__name__
        assert 1 <= len(read) <= 2 and srv.results_sent == 2  # the rest never came


def test_a_held_create_makes_nothing_before_and_something_after() -> None:
    for where, made in (("before", 0), ("after", 1)):
        with AnthropicBatchServer(batch_faults=BatchFaults(hold_create=where)) as srv:
            client = anthropic.Anthropic(base_url=srv.url, api_key=KEY, max_retries=0, timeout=1)
            with pytest.raises(anthropic.APITimeoutError):
                client.messages.batches.create(requests=requests(2))
            assert srv.creates_held == 1 and len(srv.batches) == made
            assert sum(srv.received_ids.values()) == 2


def openai_client(srv: OpenAIBatchServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0, timeout=10)


def upload(client: openai.OpenAI, n: int, prefix: str = "c") -> str:
    lines = [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": f"hi {i}"}]},
        }
        for i in range(n)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("in.jsonl", data), purpose="batch").id


def test_openai_files_and_batches() -> None:
    with OpenAIBatchServer(batch_faults=BatchFaults(hold=True)) as srv:
        client = openai_client(srv)
        file_id = upload(client, 3)
        batch = client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"tooltrial_group": "g1"},
        )
        other = client.batches.create(
            input_file_id=upload(client, 1, "x"),
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        assert batch.status == "in_progress" and batch.metadata == {"tooltrial_group": "g1"}
        assert [b.id for b in client.batches.list(limit=1)] == [other.id, batch.id]
        client.batches.cancel(other.id)
        srv.release()
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts.completed == 3
        out = client.files.content(done.output_file_id).text.splitlines()
        assert sorted(json.loads(line)["custom_id"] for line in out) == ["c0", "c1", "c2"]
        cancelled = client.batches.retrieve(other.id)
        assert cancelled.status == "cancelled" and cancelled.output_file_id is None
        error = json.loads(client.files.content(cancelled.error_file_id).text)
        assert error["error"]["code"] == "batch_cancelled"


def test_openai_errored_and_expired_items_are_in_the_error_file() -> None:
    with OpenAIBatchServer(batch_faults=BatchFaults(errored=0.5, expired=0.5, seed=3)) as srv:
        client = openai_client(srv)
        batch = client.batches.create(
            input_file_id=upload(client, 6),
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        done = client.batches.retrieve(batch.id)
        errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
        kinds = {(e["error"] or {}).get("code") or e["response"]["status_code"] for e in errors}
        assert len(errors) == 6 and kinds == {"batch_expired", 500}


def test_servers_stop_with_the_test_even_with_a_create_held() -> None:
    srv = AnthropicBatchServer(
        batch_faults=BatchFaults(hold_create="after"), max_seconds=30
    ).start()
    client = anthropic.Anthropic(base_url=srv.url, api_key=KEY, max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.batches.create(requests=requests(1))
    srv.stop()
    assert not any(t.name == "messages-server" and t.is_alive() for t in threading.enumerate())
