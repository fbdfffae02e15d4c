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


def test_version_1_specs_of_older_bundles_load_as_minilm():
    old = FeatureSpec().to_dict()
    old.pop("encoder")
    old["version"] = 1
    spec = FeatureSpec.from_dict(old)
    assert spec.encoder == "minilm" and spec.version == 1


def test_version_1_cannot_name_another_encoder():
    with pytest.raises(ValueError, match="predates"):
        FeatureSpec(version=1, encoder="static", embedding_dim=256)


def test_spec_for_encoder():
    spec = FeatureSpec.for_encoder("static", max_tokens=128, head_tokens=32)
    assert (spec.encoder, spec.embedding_dim, spec.version) == ("static", 256, 3)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="encoder must be one of"):
        FeatureSpec.for_encoder("word2vec")
    with pytest.raises(ValueError, match="encoder must be one of"):
        FeatureSpec(encoder="word2vec")
