"""Test doubles that speak real protocols, for tooltrial's tests and yours.

``MessagesServer`` (Anthropic Messages API, with fault injection) and
``LangSmithServer`` (the LangSmith ingestion API) run on 127.0.0.1 only, so the real
``ChatAnthropic`` and ``langsmith`` clients can be exercised offline.

``scripted_agent.ScriptedAgent`` makes ``MessagesServer`` play whole agentic
conversations, each reply chosen from the tool results it is sent (``--agent`` when the
server runs in its own process). ``openai_server.OpenAIServer`` plays the same policies
over OpenAI's Chat Completions API, for the real ``ChatOpenAI`` client (``openai:``).

``scripted.ScriptedModel`` is an in-process model that answers from a script, per
(variant, scenario) or from a function: for testing a pipeline, or a plugin provider,
without any server.
"""
