"""Request validation: a table of bad bodies, each refused with a useful message."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from serving.schemas import ChatMessage, RouteRequest

PROMPT = {"prompt": "Summarise this diff."}

BAD = [
    # id, body, text expected in the error
    ("empty body", {}, "non-empty `prompt`"),
    ("empty prompt", {"prompt": ""}, "non-empty `prompt`"),
    ("empty messages", {"messages": []}, "non-empty `prompt`"),
    ("null prompt and messages", {"prompt": None, "messages": None}, "non-empty `prompt`"),
    ("prompt not a string", {"prompt": 42}, "prompt"),
    ("messages not a list", {"messages": "hi"}, "messages"),
    ("message without role", {"messages": [{"content": "hi"}]}, "role"),
    ("message content a number", {"messages": [{"role": "user", "content": 3}]}, "content"),
    ("negative value_usd", {**PROMPT, "value_usd": -1}, "greater than or equal to 0"),
    ("infinite value_usd", {**PROMPT, "value_usd": float("inf")}, "finite"),
    ("nan value_usd", {**PROMPT, "value_usd": float("nan")}, "finite"),
    ("value_usd as a string", {**PROMPT, "value_usd": "1.0"}, "valid number"),
    ("value_usd as a bool", {**PROMPT, "value_usd": True}, "valid number"),
    ("min_success above 1", {**PROMPT, "min_success": 2}, "less than or equal to 1"),
    ("negative min_success", {**PROMPT, "min_success": -0.1}, "greater than or equal to 0"),
    ("zero max_cost_usd", {**PROMPT, "max_cost_usd": 0}, "greater than 0"),
    ("negative max_cost_usd", {**PROMPT, "max_cost_usd": -0.5}, "greater than 0"),
    ("empty candidates", {**PROMPT, "candidates": []}, "at least 1"),
    ("duplicate candidates", {**PROMPT, "candidates": ["a", "b", "a"]}, "repeated: ['a']"),
    ("candidates not a list", {**PROMPT, "candidates": "a"}, "candidates"),
    ("cache without model", {**PROMPT, "cache": {"cached_tokens": 10}}, "model"),
    (
        "negative cached tokens",
        {**PROMPT, "cache": {"model": "a", "cached_tokens": -1}},
        "greater than or equal",
    ),
    (
        "fractional cached tokens",
        {**PROMPT, "cache": {"model": "a", "cached_tokens": 1.5}},
        "valid integer",
    ),
    ("user not a string", {**PROMPT, "user": 7}, "user"),
    ("lone surrogate in prompt", {"prompt": "ab\ud800"}, "prompt holds an unpaired"),
    (
        "lone surrogate in a message",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]},
        "messages[0].content holds an unpaired",
    ),
    ("lone surrogate in user", {**PROMPT, "user": "\ud800"}, "user holds an unpaired"),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_requests_are_refused(body, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        RouteRequest.model_validate(body)


GOOD = [
    ("prompt only", PROMPT),
    ("messages only", {"messages": [{"role": "user", "content": "hi"}]}),
    (
        "content parts",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    ),
    ("null content", {"messages": [{"role": "assistant", "content": None}, {"role": "user"}]}),
    ("integer knobs", {**PROMPT, "value_usd": 2, "min_success": 1, "max_cost_usd": 1}),
    ("zero value_usd", {**PROMPT, "value_usd": 0}),
    (
        "empty prompt next to messages",
        {"prompt": "", "messages": [{"role": "user", "content": "q"}]},
    ),
]


@pytest.mark.parametrize("body", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_good_requests_are_accepted(body):
    RouteRequest.model_validate(body)


def test_whole_chat_completions_body_is_accepted():
    body = {
        "model": "gpt-4o",
        "temperature": 0.2,
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?", "name": "ann"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        ],
        "user": "ann",
        "value_usd": 0.5,
    }
    request = RouteRequest.model_validate(body)
    assert request.value_usd == 0.5 and request.user == "ann"
    assert not hasattr(request, "temperature")
    # Extra message fields survive, so the scorer sees the message as sent.
    prompt, messages = request.routing_input()
    assert prompt is None and messages[1]["name"] == "ann"


def test_routing_input_treats_empty_prompt_as_absent():
    request = RouteRequest(prompt="", messages=[ChatMessage(role="user", content="q")])
    prompt, messages = request.routing_input()
    assert prompt is None and messages == [{"role": "user", "content": "q"}]
