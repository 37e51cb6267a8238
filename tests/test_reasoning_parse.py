"""Reasoning, tool calls, annotations and content parts, whole and streamed, and what an
answer without text means (reference/openrouter-api-messages.md §2-§4; bodies shaped like
its real captures, cited by their [Mn] tags)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openrouter_nb.api import errors as E
from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.parse import chat_result
from openrouter_nb.api.stream import StreamAccumulator
from openrouter_nb.api.types import ChatResult, StreamDelta, ToolCall, Usage

MODEL = "deepseek/deepseek-r1-0528:free"


def _body(message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None,
          native: str | None = None) -> dict[str, Any]:
    return {"id": "gen-1", "provider": "Chutes", "model": MODEL, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": finish,
                         "native_finish_reason": native or finish,
                         "message": {"role": "assistant", **message}}],
            "usage": usage or {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


def _parse(body: dict[str, Any]) -> ChatResult:
    return chat_result(body, http_status=200, headers={}, latency_s=0.1, requested_model=MODEL)


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": {"role": "assistant", **delta},
                                         "finish_reason": finish, "native_finish_reason": finish}]
    return json.dumps({"id": "gen-2", "provider": "Minimax", "model": MODEL,
                       "object": "chat.completion.chunk", "choices": choices, **extra})


def _stream(payloads: list[str]) -> tuple[StreamAccumulator, list[StreamDelta]]:
    acc = StreamAccumulator(requested_model=MODEL, started=0.0, clock=lambda: 1.0)
    deltas = [delta for payload in payloads for delta in acc.feed(payload)]
    return acc, deltas


# -- usage ---------------------------------------------------------------------------------
def test_usage_reads_reasoning_and_cached_tokens() -> None:
    usage = Usage.from_json({"prompt_tokens": 37, "completion_tokens": 92, "total_tokens": 129,
                             "cost": 0.00019325, "is_byok": False,
                             "prompt_tokens_details": {"cached_tokens": 12, "audio_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 64}})  # [M45]
    assert usage == Usage(37, 92, 129, 0.00019325, reasoning_tokens=64, cached_tokens=12)
    assert usage.as_dict() == {"prompt_tokens": 37, "completion_tokens": 92,
                               "total_tokens": 129, "cost": 0.00019325,
                               "reasoning_tokens": 64, "cached_tokens": 12}
    bare = Usage.from_json({"prompt_tokens": 1, "completion_tokens_details": None})
    assert bare is not None and bare.reasoning_tokens is None and bare.cached_tokens is None


# -- non-streamed --------------------------------------------------------------------------
def test_reasoning_and_details_of_a_whole_answer() -> None:
    details = [{"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0,
                "text": "The user is asking me …", "signature": "EugCCkgIDRABGAIqQPO/"}]
    result = _parse(_body({"content": "ok", "refusal": None,
                           "reasoning": "The user is asking me to reply …",
                           "reasoning_details": details}, native="end_turn"))  # [M37]
    assert result.text == "ok" and result.reasoning == "The user is asking me to reply …"
    assert list(result.reasoning_details) == details
    assert result.native_finish_reason == "end_turn" and result.finish_reason == "stop"


def test_reasoning_content_alias_and_details_only_answers() -> None:
    alias = _parse(_body({"content": "4", "reasoning_content": "2 and 2 make 4"}))
    assert alias.reasoning == "2 and 2 make 4"
    summary = _parse(_body({"content": "Voltaire …", "reasoning_details": [  # [M32]
        {"type": "reasoning.summary", "format": "openai-responses-v1", "index": 0,
         "summary": "**Structuring Voltaire’s Impact**"},
        {"type": "reasoning.encrypted", "format": "openai-responses-v1", "index": 0,
         "id": "rs_0e67", "data": "gAAAAABpAjHR"}]}))
    assert summary.reasoning == "**Structuring Voltaire’s Impact**"
    assert [d["type"] for d in summary.reasoning_details] == ["reasoning.summary",
                                                              "reasoning.encrypted"]
    encrypted = _parse(_body({"content": "hi", "reasoning": None, "reasoning_details": [
        {"type": "reasoning.encrypted", "data": "[REDACTED]"}]}))  # [M44]
    assert encrypted.reasoning is None and len(encrypted.reasoning_details) == 1
    plain = _parse(_body({"content": "Hi", "reasoning": None}))  # [M32, M36]
    assert plain.reasoning is None and plain.reasoning_details == () and plain.tool_calls == ()


def test_content_given_as_parts_is_joined() -> None:
    result = _parse(_body({"content": [{"type": "text", "text": "Hello, "},
                                       {"type": "image_url", "image_url": {"url": "x"}},
                                       {"type": "text", "text": "world"}]}))
    assert result.text == "Hello, world"


def test_tool_calls_of_a_whole_answer_and_the_message_to_echo() -> None:
    body = _body({"content": "", "reasoning": None, "refusal": None, "tool_calls": [  # [M38]
        {"id": "3sniiMddS", "index": 0, "type": "function",
         "function": {"name": "divide", "arguments": '{"numerator": 123, "denominator": 456}'}},
        {"function": {"name": "find_education_content"},  # no arguments at all [M39]
         "id": "toolu_vrtx_015QAXScZzRDPttiPoc34AdD", "index": 1, "type": "function"}]},
        finish="tool_calls")
    result = _parse(body)
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert result.tool_calls == (
        ToolCall(0, "3sniiMddS", "divide", '{"numerator": 123, "denominator": 456}'),
        ToolCall(1, "toolu_vrtx_015QAXScZzRDPttiPoc34AdD", "find_education_content", "{}"))
    assert result.assistant_message() == {
        "role": "assistant", "content": None,
        "tool_calls": [
            {"id": "3sniiMddS", "type": "function",
             "function": {"name": "divide", "arguments": '{"numerator": 123, "denominator": 456}'}},
            {"id": "toolu_vrtx_015QAXScZzRDPttiPoc34AdD", "type": "function",
             "function": {"name": "find_education_content", "arguments": "{}"}}]}


def test_assistant_message_keeps_details_else_reasoning_and_annotations() -> None:
    details = [{"type": "reasoning.text", "text": "think", "signature": "sig", "index": 0}]
    annotations = [{"type": "file", "file": {"hash": "a1e0", "name": "filename.pdf",
                                             "content": [{"type": "text", "text": "# Dummy"}]}}]
    result = _parse(_body({"content": "It is a dummy.", "reasoning": "think",
                           "reasoning_details": details, "annotations": annotations}))  # [M47]
    message = result.assistant_message()
    assert message == {"role": "assistant", "content": "It is a dummy.",
                       "reasoning_details": details, "annotations": annotations}
    message["reasoning_details"][0]["text"] = "changed"
    assert result.reasoning_details[0]["text"] == "think"  # the result is not altered
    only_text = _parse(_body({"content": "4", "reasoning": "2+2"}))
    assert only_text.assistant_message() == {"role": "assistant", "content": "4",
                                             "reasoning": "2+2"}


# -- what an answer without text means -----------------------------------------------------
def test_no_text_at_length_is_truncated_not_retryable() -> None:
    body = _body({"content": "", "reasoning": "Let me think about rate limits…"},
                 finish="length", usage={"prompt_tokens": 12, "completion_tokens": 800,
                                         "total_tokens": 812,
                                         "completion_tokens_details": {"reasoning_tokens": 800}})
    with pytest.raises(E.TruncatedError) as info:
        _parse(body)
    error = info.value
    assert error.kind == "truncated" and not error.retryable
    assert error.message == (f"The model ({MODEL}) spent all of its tokens thinking "
                             "(800 reasoning tokens) and wrote no answer.")
    assert error.partial_text == "Let me think about rate limits…"
    assert error.result is not None and error.result.usage is not None
    assert error.result.usage.reasoning_tokens == 800 and error.result.finish_reason == "length"
    assert E.error_class_for("truncated") is E.TruncatedError and "truncated" in E.ERROR_KINDS


def test_no_text_at_length_without_reasoning_is_truncated_too() -> None:
    with pytest.raises(E.TruncatedError) as info:
        _parse(_body({"content": None}, finish="length", native="MAX_TOKENS"))
    assert info.value.message == (f"The model ({MODEL}) reached its token limit (7 tokens) "
                                  "before writing any answer.")
    assert info.value.partial_text == ""
    assert info.value.result is not None
    assert info.value.result.native_finish_reason == "MAX_TOKENS"


def test_reasoning_only_answer_is_an_answer() -> None:
    result = _parse(_body({"content": "", "reasoning": "The answer is 4."}))
    assert result.text == "" and result.reasoning == "The answer is 4."


def test_nothing_at_all_is_the_retryable_empty_answer() -> None:
    with pytest.raises(E.ProviderError, match="empty answer") as info:
        _parse(_body({"content": "", "reasoning": None}))
    assert info.value.retryable


def test_text_cut_at_length_is_an_answer() -> None:
    result = _parse(_body({"content": "Half an ans"}, finish="length"))
    assert result.text == "Half an ans" and result.finish_reason == "length"


# -- streamed --------------------------------------------------------------------------------
CLAUDE_STREAM = [  # [M35], envelope trimmed
    _chunk({"content": "", "reasoning": None, "reasoning_details": []}),
    _chunk({"content": "", "reasoning": None, "reasoning_details": [
        {"type": "reasoning.text", "text": "", "signature": "", "format": "anthropic-claude-v1",
         "index": 0}]}),
    _chunk({"content": "", "reasoning": "This", "reasoning_details": [
        {"type": "reasoning.text", "text": "This", "format": "anthropic-claude-v1", "index": 0}]}),
    _chunk({"content": "", "reasoning": " is simple.", "reasoning_details": [
        {"type": "reasoning.text", "text": " is simple.", "format": "anthropic-claude-v1",
         "index": 0}]}),
    _chunk({"content": "", "reasoning": None, "reasoning_details": [
        {"type": "reasoning.text", "signature": "Et0BCkgIChACGAIqQA2s",
         "format": "anthropic-claude-v1", "index": 0}]}),
    _chunk({"content": "2 + 2 = 4", "reasoning": None, "reasoning_details": []}),
    _chunk({"content": ""}, finish="stop"),
    _chunk({"content": ""}, usage={"prompt_tokens": 9, "completion_tokens": 20,
                                   "total_tokens": 29,
                                   "completion_tokens_details": {"reasoning_tokens": 13}}),
    "[DONE]",
]


def test_streamed_reasoning_is_shown_once_and_details_merged() -> None:
    acc, deltas = _stream(CLAUDE_STREAM)
    assert [(d.kind, d.text) for d in deltas] == [
        ("reasoning", "This"), ("reasoning", " is simple."), ("text", "2 + 2 = 4")]
    result = acc.result()
    assert result.text == "2 + 2 = 4" and result.reasoning == "This is simple."
    assert result.reasoning_details == ({
        "type": "reasoning.text", "text": "This is simple.", "signature": "Et0BCkgIChACGAIqQA2s",
        "format": "anthropic-claude-v1", "index": 0},)
    assert result.usage is not None and result.usage.reasoning_tokens == 13
    assert result.assistant_message()["reasoning_details"] == list(result.reasoning_details)


def test_streamed_details_without_reasoning_text_still_show_it() -> None:
    acc, deltas = _stream([
        _chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": "Plan", "index": 0}]}),
        _chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": " it", "index": 0},
                                      {"type": "reasoning.encrypted", "data": "gAAA", "index": 0,
                                       "id": "rs_1"}]}),
        _chunk({"content": "Done"}, finish="stop"), "[DONE]"])
    assert [(d.kind, d.text) for d in deltas] == [("reasoning", "Plan"), ("reasoning", " it"),
                                                  ("text", "Done")]
    result = acc.result()
    assert result.reasoning == "Plan it"
    assert result.reasoning_details == (
        {"type": "reasoning.summary", "summary": "Plan it", "index": 0},
        {"type": "reasoning.encrypted", "data": "gAAA", "index": 0, "id": "rs_1"})


MINIMAX_CUT = [  # [M40]: reasoning, finish "length", then an error event carrying the usage
    _chunk({"content": "", "reasoning": "We need", "reasoning_details": [
        {"type": "reasoning.text", "text": "We need", "index": 0, "format": None}]}),
    _chunk({"content": "", "reasoning": " to respond to a greeting. The user",
            "reasoning_details": [{"type": "reasoning.text", "index": 0, "format": None,
                                   "text": " to respond to a greeting. The user"}]},
           finish="length"),
    _chunk({"content": "", "reasoning": None, "reasoning_details": []}, finish="length"),
    _chunk({"content": ""}, error={"code": 400, "message": "Token limit reached"},
           usage={"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53, "cost": 0,
                  "completion_tokens_details": {"reasoning_tokens": 11, "image_tokens": 0}}),
    "[DONE]",
]


def test_streamed_cut_at_max_tokens_is_truncated_not_an_error_event() -> None:
    acc, _ = _stream(MINIMAX_CUT)
    with pytest.raises(E.TruncatedError) as info:
        acc.result()
    error = info.value
    assert error.message == (f"The model ({MODEL}) spent all of its tokens thinking "
                             "(10 reasoning tokens) and wrote no answer.")  # 11 > 10 sent
    assert error.result.usage is not None and error.result.usage.reasoning_tokens == 11
    assert error.partial_text == "We need to respond to a greeting. The user"
    assert error.result is not None and error.result.usage is not None
    assert error.result.usage.total_tokens == 53 and error.result.native_finish_reason == "length"


def test_streamed_cut_after_some_text_is_an_answer() -> None:
    payloads = [_chunk({"content": "Rate limits cap"}), _chunk({"content": " how"}, finish="length"),
                _chunk({"content": ""}, error={"code": 400, "message": "Token limit reached"},
                       usage={"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}),
                "[DONE]"]
    acc, _ = _stream(payloads)
    result = acc.result()
    assert result.text == "Rate limits cap how" and result.finish_reason == "length"
    assert result.usage is not None and result.usage.total_tokens == 7


def test_token_limit_error_event_alone_also_marks_the_cut() -> None:
    acc, _ = _stream([_chunk({"content": "", "reasoning": "Hmm"}),
                      _chunk({}, error={"code": 400, "message": "Token limit reached"}), "[DONE]"])
    with pytest.raises(E.TruncatedError):
        acc.result()


def test_streamed_reasoning_only_answer_is_an_answer() -> None:
    acc, _ = _stream([_chunk({"content": "", "reasoning": "It is 4."}),
                      _chunk({"content": ""}, finish="stop"), "[DONE]"])
    result = acc.result()
    assert result.text == "" and result.reasoning == "It is 4."


BEDROCK_TOOL_STREAM = [  # [M63]
    _chunk({"content": None, "tool_calls": [
        {"index": 0, "id": "toolu_bdrk_01AMXFNuQYF6fxS1hryPtu9K", "type": "function",
         "function": {"name": "get_all_tabs", "arguments": ""}}]}),
    _chunk({"content": None, "tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
    _chunk({"content": ""}, finish="tool_calls"),
    json.dumps({"id": "gen-3", "choices": [], "usage": {"prompt_tokens": 25105,
                                                         "completion_tokens": 55,
                                                         "total_tokens": 25160}}),
    "[DONE]",
]


def test_streamed_tool_call_without_arguments() -> None:
    acc, deltas = _stream(BEDROCK_TOOL_STREAM)
    assert [(d.kind, d.text, d.tool_index, d.tool_name) for d in deltas] == [
        ("tool_call", "", 0, "get_all_tabs"), ("tool_call", "", 0, "get_all_tabs")]
    result = acc.result()
    assert result.tool_calls == (ToolCall(0, "toolu_bdrk_01AMXFNuQYF6fxS1hryPtu9K",
                                          "get_all_tabs", "{}"),)
    assert result.assistant_message()["content"] is None


def test_interleaved_streamed_tool_calls_merge_by_index() -> None:
    def call(index: int, args: str) -> str:
        return _chunk({"tool_calls": [{"index": index, "function": {"arguments": args}}]})
    acc, deltas = _stream([
        _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                "function": {"name": "weather", "arguments": '{"ci'}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                "function": {"name": "time", "arguments": "{"}}]}),
        call(0, 'ty": "Oslo"}'), call(1, "}"),
        _chunk({}, finish="tool_calls"), "[DONE]"])
    assert [(d.tool_index, d.text) for d in deltas] == [(0, '{"ci'), (1, "{"),
                                                         (0, 'ty": "Oslo"}'), (1, "}")]
    assert acc.result().tool_calls == (ToolCall(0, "call_a", "weather", '{"city": "Oslo"}'),
                                       ToolCall(1, "call_b", "time", "{}"))


def test_streamed_tool_calls_fall_back_to_id_when_index_is_missing_or_reused() -> None:
    acc, _ = _stream([  # Gemini-style upstreams: whole calls, no index, or index 0 each time
        _chunk({"tool_calls": [{"id": "tool_a", "function": {"name": "a", "arguments": "{}"}}]}),
        _chunk({"tool_calls": [{"index": 0, "id": "tool_b",
                                "function": {"name": "b", "arguments": '{"x": 1}'}}]}),
        _chunk({"tool_calls": [{"id": "tool_c", "function": {"name": "c"}}]}),
        _chunk({"tool_calls": [{"function": {"arguments": '{"y": 2}'}}]}),  # continues tool_c
        _chunk({}, finish="tool_calls"), "[DONE]"])
    assert acc.result().tool_calls == (ToolCall(0, "tool_a", "a", "{}"),
                                       ToolCall(1, "tool_b", "b", '{"x": 1}'),
                                       ToolCall(2, "tool_c", "c", '{"y": 2}'))


def test_streamed_annotations_and_content_parts() -> None:
    citation = {"type": "url_citation", "url_citation": {"url": "https://example.org",
                                                         "title": "Example"}}  # [M46]
    acc, _ = _stream([_chunk({"content": "", "annotations": [citation]}),
                      _chunk({"content": [{"type": "text", "text": "See "}, {"type": "text",
                                                                             "text": "there"}]}),
                      _chunk({}, finish="stop"), "[DONE]"])
    result = acc.result()
    assert result.text == "See there" and result.annotations == (citation,)


def test_client_hands_every_kind_to_on_delta_and_sends_one_request() -> None:
    sse = "".join(f"data: {payload}\n\n" for payload in MINIMAX_CUT)
    requests: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream",
                                            "server": "test"}, content=sse.encode())

    client = OpenRouterClient("sk-or-v1-test", "http://test/api/v1",
                              transport=httpx.MockTransport(serve))
    seen: list[StreamDelta] = []
    with pytest.raises(E.TruncatedError) as info:
        client.chat({"model": MODEL, "messages": [], "stream": True}, on_delta=seen.append)
    assert len(requests) == 1
    assert [d.kind for d in seen] == ["reasoning", "reasoning"]
    assert info.value.result is not None and info.value.result.server == "test"
    sse = "".join(f"data: {payload}\n\n" for payload in CLAUDE_STREAM)
    client = OpenRouterClient("sk-or-v1-test", "http://test/api/v1", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                       content=sse.encode())))
    seen.clear()
    result = client.chat({"model": MODEL, "messages": [], "stream": True}, on_delta=seen.append)
    assert [d.kind for d in seen] == ["reasoning", "reasoning", "text"]
    assert result.reasoning == "This is simple." and result.streamed
