"""Cheap statistics of the routing text, computed on the whole text before the
encoder truncates it: length and structure say a lot about difficulty and cost
(a 20k-character stack trace costs more to answer than a one-line question), and
they cost microseconds.
"""

from __future__ import annotations

import math
import re

import numpy as np

#: Names and order of the statistics; the feature spec stores this tuple.
TEXT_STATS: tuple[str, ...] = (
    "log_chars",
    "log_lines",
    "code_line_fraction",
    "has_code_fence",
    "has_traceback",
    "digit_fraction",
    "math_marker_fraction",
    "log_words",
)

_CODE_LINE = re.compile(r"^(\s{4,}|\t)|[;{}]\s*$|^\s*(def|class|import|from|return|#include)\b")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*\w+(Error|Exception):", re.M)
_MATH = set("=+-*/^<>$\\")
_ASCII_DIGITS = "0123456789"


def text_stats(text: str) -> np.ndarray:
    """Statistics of one text, shape ``(len(TEXT_STATS),)``, float32."""
    n_chars = len(text)
    lines = text.splitlines() or [""]
    code_lines = sum(1 for line in lines if _CODE_LINE.search(line))
    if text.isascii():
        # Same counts as the loop below (ASCII digits are all of isdigit there), in C:
        # a long prompt is counted in microseconds instead of a millisecond.
        digits = sum(map(text.count, _ASCII_DIGITS))
        maths = sum(map(text.count, _MATH))
    else:
        digits = sum(ch.isdigit() for ch in text)
        maths = sum(ch in _MATH for ch in text)
    denom = max(n_chars, 1)
    return np.array(
        [
            math.log1p(n_chars),
            math.log1p(len(lines)),
            code_lines / len(lines),
            float("```" in text),
            float(_TRACEBACK.search(text) is not None),
            digits / denom,
            maths / denom,
            math.log1p(len(text.split())),
        ],
        dtype=np.float32,
    )


def text_stats_batch(texts: list[str]) -> np.ndarray:
    """Statistics of many texts, shape ``(n_texts, len(TEXT_STATS))``."""
    if not texts:
        return np.zeros((0, len(TEXT_STATS)), dtype=np.float32)
    return np.stack([text_stats(t) for t in texts])
