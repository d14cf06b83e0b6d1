"""``tooltrial.redact``: a known key's value is replaced wherever it is written."""

from __future__ import annotations

import logging

import pytest

from tooltrial.redact import MASK, install_log_redaction, redact, redact_data

KEY = "sk-ant-REDACT-0123456789abcdef"


@pytest.fixture(autouse=True)
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("SOMEONES_API_KEY", 'quote"d-key-value')
    monkeypatch.setenv("SHORT_API_KEY", "abc")


def test_text_and_its_json_form_are_redacted() -> None:
    assert redact(f"the key is {KEY}!") == f"the key is {MASK}!"
    assert redact('{"k": "quote\\"d-key-value"}') == '{"k": "***"}'
    assert redact("abc stays") == "abc stays"  # too short to be a key


def test_data_is_redacted_keys_included() -> None:
    data = {KEY: [KEY, {"x": f"a{KEY}b"}], "n": 1}
    assert redact_data(data) == {MASK: [MASK, {"x": f"a{MASK}b"}], "n": 1}


def test_every_log_record_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    logger = logging.getLogger("httpx.headers")
    with caplog.at_level(logging.DEBUG):
        logger.debug("response headers: %s", {"x-echo": KEY})
        try:
            raise ValueError(KEY)
        except ValueError:
            logger.exception("failed")
    assert KEY not in caplog.text
    assert MASK in caplog.text
