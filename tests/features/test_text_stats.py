import numpy as np

from features.text_stats import TEXT_STATS, text_stats, text_stats_batch

CODE = """Traceback (most recent call last):
  File "x.py", line 3, in <module>
    foo()
ValueError: bad value
```python
def foo():
    return 1 + 2
```"""


def test_stats_separate_code_from_prose():
    code = dict(zip(TEXT_STATS, text_stats(CODE), strict=True))
    prose = dict(zip(TEXT_STATS, text_stats("What is the capital of France?"), strict=True))
    assert code["has_traceback"] == 1 and prose["has_traceback"] == 0
    assert code["has_code_fence"] == 1 and prose["has_code_fence"] == 0
    assert code["code_line_fraction"] > 0.3 > prose["code_line_fraction"]
    assert code["log_chars"] > prose["log_chars"]


def test_batch_shape_and_empty_text(shipped_calls):
    texts = [*shipped_calls["prompt"].head(5).tolist(), ""]
    stats = text_stats_batch(texts)
    assert stats.shape == (6, len(TEXT_STATS))
    assert np.isfinite(stats).all()
    assert text_stats_batch([]).shape == (0, len(TEXT_STATS))


def test_ascii_fast_path_counts_like_the_character_loop(shipped_calls):
    from features.text_stats import _MATH

    texts = [CODE, "1+1=2 <b> $x^2$ \\frac", *shipped_calls["prompt"].drop_duplicates().head(30)]
    for text in (t for t in texts if t.isascii()):
        stats = dict(zip(TEXT_STATS, text_stats(text), strict=True))
        n = max(len(text), 1)
        assert stats["digit_fraction"] == np.float32(sum(c.isdigit() for c in text) / n)
        assert stats["math_marker_fraction"] == np.float32(sum(c in _MATH for c in text) / n)
