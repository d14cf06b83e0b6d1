"""Test doubles that speak real protocols, for tooltrial's tests and yours.

``MessagesServer`` (Anthropic Messages API, with fault injection) and
``LangSmithServer`` (the LangSmith ingestion API) run on 127.0.0.1 only, so the real
``ChatAnthropic`` and ``langsmith`` clients can be exercised offline.
"""
