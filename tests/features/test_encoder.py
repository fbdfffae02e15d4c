"""The exported encoder against sentence-transformers, and its truncation rule."""

import numpy as np
import pytest

from features.encoder import OnnxEncoder
from features.encoder_export import source_model_path
from features.featurizer import Featurizer
from features.spec import FeatureSpec


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return OnnxEncoder(encoder_dir, max_tokens=256, head_tokens=64)


def test_int8_encoder_matches_sentence_transformers(encoder_dir, shipped_calls):
    from sentence_transformers import SentenceTransformer

    texts = shipped_calls.drop_duplicates("prompt_id")["prompt"].head(24).tolist()
    texts += ["How do I reverse a list in Python?", "Prouve que racine de 2 est irrationnel."]
    reference = SentenceTransformer(str(source_model_path()), device="cpu")
    reference.max_seq_length = 256
    # Keeping only the head makes our truncation that of sentence-transformers.
    head_only = OnnxEncoder(encoder_dir, max_tokens=256, head_tokens=254)
    ours = head_only.encode(texts)
    theirs = reference.encode(texts, normalize_embeddings=True)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.98, cosine.min()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_long_text_keeps_head_and_tail(encoder):
    text = "alpha " * 2000 + "the actual question is about omega"
    ids = encoder.token_ids([text])[0]
    assert len(ids) == 256
    assert ids[0] == encoder.cls_id and ids[-1] == encoder.sep_id
    tail = encoder.tokenizer.decode(ids[-9:-1])
    assert "omega" in tail
    assert encoder.tokenizer.decode(ids[1:5]).startswith("alpha")


def test_encoding_does_not_depend_on_other_texts(encoder, shipped_calls):
    texts = shipped_calls["prompt"].drop_duplicates().head(6).tolist()
    together = encoder.encode(texts, workers=2)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_array_equal(together, alone)


def test_featurizer_vector_layout(encoder_dir):
    spec = FeatureSpec(max_tokens=64, head_tokens=16)
    features = Featurizer(spec, encoder_dir).transform_texts(["short", "a longer text " * 50])
    assert features.shape == (2, spec.n_features)
    assert features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features[:, :384], axis=1), 1.0, atol=1e-4)
