"""The static encoder tier: MiniLM distilled into one vector per vocabulary token."""

import numpy as np
import pytest

from features.encoder import STATIC_ENCODER_FILE, OnnxEncoder, StaticEncoder, make_encoder
from features.featurizer import Featurizer
from features.spec import ENCODER_DIMS, FeatureSpec


@pytest.fixture(scope="module")
def static(static_encoder_dir):
    return StaticEncoder(static_encoder_dir, max_tokens=256, head_tokens=64)


def test_vectors_file_is_a_plain_float32_matrix(static_encoder_dir, static):
    vectors = np.load(static_encoder_dir / STATIC_ENCODER_FILE, allow_pickle=False)
    assert vectors.dtype == np.float32
    assert vectors.shape == (static.tokenizer.get_vocab_size(), ENCODER_DIMS["static"])
    assert np.isfinite(vectors).all()


def test_output_is_normalised(static, shipped_calls):
    texts = shipped_calls["prompt"].drop_duplicates().head(8).tolist()
    texts += ["hi", "", "   ", "Prouve que racine de 2 est irrationnel.", "x" * 50_000]
    vectors = static.encode(texts)
    assert vectors.shape == (len(texts), static.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_fast_path_equals_batch_path_and_ignores_batch_mates(static, shipped_calls):
    texts = shipped_calls["prompt"].drop_duplicates().head(6).tolist()
    together = static.encode(texts)
    alone = np.vstack([static.encode([t]) for t in texts])
    one_by_one = np.vstack([static.encode_text(t) for t in texts])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-7)


def test_truncates_like_the_minilm_encoder(static, encoder_dir):
    minilm = OnnxEncoder(encoder_dir, max_tokens=64, head_tokens=16)
    short = StaticEncoder(static.model_dir, max_tokens=64, head_tokens=16)
    text = "alpha " * 500 + "the actual question is about omega"
    assert short.token_ids([text]) == minilm.token_ids([text])


def test_similar_texts_are_closer_than_unrelated_ones(static):
    a, b, c = static.encode(
        ["How do I reverse a list in Python?", "reverse a python list", "Sunny weather in Paris"]
    )
    assert a @ b > a @ c + 0.2


def test_featurizer_picks_the_spec_encoder(static_encoder_dir):
    spec = FeatureSpec.for_encoder("static", max_tokens=64, head_tokens=16)
    featurizer = Featurizer(spec, static_encoder_dir)
    assert isinstance(featurizer.encoder, StaticEncoder)
    features = featurizer.transform_texts(["short", "a longer text " * 50])
    assert features.shape == (2, spec.n_features) and spec.embedding_dim == 256


def test_a_spec_whose_width_does_not_match_the_encoder_is_refused(static_encoder_dir):
    with pytest.raises(ValueError, match="256-d"):
        Featurizer(FeatureSpec(encoder="static", embedding_dim=384), static_encoder_dir)


def test_unknown_encoder_kind():
    with pytest.raises(ValueError, match="static"):
        make_encoder("word2vec", ".")
