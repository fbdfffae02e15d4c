import pytest

from features.spec import FeatureSpec


def test_round_trip():
    spec = FeatureSpec(max_tokens=128, head_tokens=32, text_source="all")
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.n_features == 384 + len(spec.text_stats) == len(spec.feature_names)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text_source": "first"}, "text_source"),
        ({"max_tokens": 4}, "max_tokens"),
        ({"max_tokens": 1024}, "max_tokens"),
        ({"max_tokens": 64, "head_tokens": 63}, "head_tokens"),
        ({"text_stats": ("log_chars", "vibes")}, "Unknown text statistics"),
        ({"version": 99}, "retrain"),
    ],
)
def test_rejects_bad_specs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureSpec(**kwargs)
