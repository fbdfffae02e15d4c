"""Which part of a request is embedded for routing.

A chat request can carry a long system prompt and many turns; what decides which
model should answer is mostly the latest user turn. The same function runs on logged
calls (training) and on live requests (serving), so there is one definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TEXT_SOURCES = ("last_user", "all")


def message_text(content: Any) -> str:
    """Text of one OpenAI chat message ``content``: a string or a list of parts.

    Non-text parts (images, audio) carry no routing text and are skipped.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
            elif isinstance(part, str):
                texts.append(part)
        return "\n".join(texts)
    raise TypeError(
        f"Expected message content as a string or a list of parts, got {type(content).__name__}."
    )


def routing_text(
    prompt: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    source: str = "last_user",
) -> str:
    """The text a routing decision is based on.

    Parameters
    ----------
    prompt : str, optional
        A plain prompt; used as-is.
    messages : list of {role, content}, optional
        OpenAI chat messages; used when ``prompt`` is None.
    source : {"last_user", "all"}
        ``"last_user"`` takes the last user turn (the question being asked);
        ``"all"`` joins every turn as ``role: text`` so context counts too.
    """
    if source not in TEXT_SOURCES:
        raise ValueError(f"Unknown text source {source!r}; expected one of {TEXT_SOURCES}.")
    if prompt is not None:
        return prompt
    if not messages:
        raise ValueError("A request needs a non-empty `prompt` or `messages`.")
    if source == "all":
        return "\n".join(
            f"{m.get('role', 'user')}: {message_text(m.get('content'))}" for m in messages
        )
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return message_text(messages[-1].get("content"))
