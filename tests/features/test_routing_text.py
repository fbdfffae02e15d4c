import pytest

from features.routing_text import message_text, routing_text

CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]},
]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"prompt": "plain"}, "plain"),
        ({"prompt": "plain", "messages": CHAT}, "plain"),
        ({"messages": CHAT}, "second"),
        ({"messages": CHAT[:3]}, "first question"),
        ({"messages": [{"role": "assistant", "content": "only"}]}, "only"),
        (
            {"messages": CHAT[:2], "source": "all"},
            "system: You are terse.\nuser: first question",
        ),
    ],
)
def test_routing_text(kwargs, expected):
    assert routing_text(**kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "non-empty `prompt` or `messages`"),
        ({"messages": []}, ValueError, "non-empty"),
        ({"prompt": "x", "source": "first"}, ValueError, "Unknown text source"),
        ({"messages": [{"role": "user", "content": 5}]}, TypeError, "string or a list"),
    ],
)
def test_routing_text_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        routing_text(**kwargs)


def test_message_text_skips_non_text_parts():
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "hi"}]
    assert message_text(parts) == "hi"
    assert message_text(None) == ""
