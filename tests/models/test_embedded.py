"""The embedded model's tool-calling protocol (see tooltrial.models.local for why it exists)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tooltrial.definitions.variants import Tool
from tooltrial.models import get_model

ADD = Tool(
    name="add_task",
    description="Add a task.",
    input_schema={"type": "object", "properties": {"title": {"type": "string"}}},
)


def test_prompt_is_not_html_escaped_and_lists_every_tool():
    from tooltrial.models.local import render_prompt

    prompt = render_prompt("Be helpful.", "Plan Mia's <party> & cake", [ADD])
    assert "Plan Mia's <party> & cake<|im_end|>" in prompt
    assert "&#39;" not in prompt and "&lt;" not in prompt
    assert f"functions.add_task:\n{json.dumps(ADD.openai_format()['function'])}" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_no_tools_means_no_function_instructions():
    from tooltrial.models.local import render_prompt

    assert "functions." not in render_prompt("S", "hi", [])


@pytest.mark.slow
def test_the_budget_covers_every_step_of_a_reply():
    model = get_model("local:smollm2", temperature=0.2, max_tokens=12)
    response = asyncio.run(model.generate("Use the tools.", "Add a task: buy milk", [ADD], 7))
    assert 0 < response.usage.output_tokens <= 12
    assert response.usage.input_tokens > 50


@pytest.mark.slow
def test_a_plain_answer_has_text():
    model = get_model("local:smollm2", temperature=0.2, max_tokens=40)
    response = asyncio.run(model.generate("You are friendly.", "Say hello.", [], 1))
    assert response.text.strip() and not response.tool_calls
    (block,) = response.content
    assert block["type"] == "text" and block["text"] == response.text == block["raw"].strip()


def test_xdist_workers_share_the_cores(monkeypatch):
    """llama.cpp's threads spin while they wait: more threads than cores is slow and erratic."""
    from tooltrial.models.local import _threads

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert _threads() == 8
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert _threads() == 4
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "16")
    assert _threads() == 1
