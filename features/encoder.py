"""The run-time sentence encoders. Training featurizes through these same classes, so
the vectors a model was fit on are the vectors it is served.

- `OnnxEncoder` (``minilm``): MiniLM exported to int8 ONNX, run by onnxruntime with
  the `tokenizers` tokenizer.
- `StaticEncoder` (``static``): MiniLM distilled offline into one vector per
  vocabulary token (`features.encoder_export.export_static_encoder`); a text is the
  normalised mean of its tokens' vectors. numpy and tokenizers only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
STATIC_ENCODER_FILE = "static_encoder.npy"
#: The files each encoder kind reads from its folder (a bundle or the encoder cache).
ENCODER_FILES = {
    "minilm": (ENCODER_FILE, TOKENIZER_FILE),
    "static": (STATIC_ENCODER_FILE, TOKENIZER_FILE),
}

# Characters kept per token of budget before tokenizing: bounds tokenizer time on
# huge prompts (a 100 kB paste) without changing the kept tokens in practice.
_CHARS_PER_TOKEN = 12


def _load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    # The shipped tokenizer.json pads and truncates to 128: we do both ourselves.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class _Truncating:
    """Head + tail truncation of token ids, shared by every encoder."""

    max_tokens: int
    head_tokens: int
    cls_id: int
    sep_id: int

    def _clip_chars(self, text: str) -> str:
        budget = self.max_tokens * _CHARS_PER_TOKEN
        if len(text) <= budget:
            return text
        head = self.head_tokens * _CHARS_PER_TOKEN
        return text[:head] + "\n" + text[len(text) - (budget - head) :]

    def _body_ids(self, ids: list[int]) -> list[int]:
        body = self.max_tokens - 2
        if len(ids) <= body:
            return ids
        tail = body - self.head_tokens
        return ids[: self.head_tokens] + (ids[len(ids) - tail :] if tail else [])

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, head+tail truncated to ``max_tokens`` with special tokens."""
        encodings = self.tokenizer.encode_batch(
            [self._clip_chars(t) for t in texts], add_special_tokens=False
        )
        return [[self.cls_id, *self._body_ids(enc.ids), self.sep_id] for enc in encodings]


class OnnxEncoder(_Truncating):
    """Text -> L2-normalised mean-pooled MiniLM embedding.

    Parameters
    ----------
    model_dir : path
        Folder holding ``encoder.onnx`` and ``tokenizer.json``.
    max_tokens : int
        Cap on encoder input length, ``[CLS]`` and ``[SEP]`` included.
    head_tokens : int
        Tokens kept from the start of a long text; the rest come from its end.
    intra_op_threads : int
        onnxruntime threads per call; 1 suits a server handling requests
        concurrently, more suits batch featurizing.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_tokens: int = 256,
        head_tokens: int = 64,
        intra_op_threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        model_dir = Path(model_dir)
        self.max_tokens = max_tokens
        self.head_tokens = head_tokens
        self.tokenizer = _load_tokenizer(model_dir)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_dir / ENCODER_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode_one(self, ids: list[int]) -> np.ndarray:
        """Embedding of one token-id sequence, shape ``(dim,)``."""
        input_ids = np.asarray([ids], dtype=np.int64)
        return self.session.run(
            None,
            {
                "input_ids": input_ids,
                "attention_mask": np.ones_like(input_ids),
                "token_type_ids": np.zeros_like(input_ids),
            },
        )[0][0]

    def encode(self, texts: list[str], workers: int = 1) -> np.ndarray:
        """Embeddings, shape ``(len(texts), dim)``, float32, unit norm.

        Every text is run on its own, never padded into a batch: the int8 graph
        quantises activations with one scale per tensor, so a batched text's vector
        would depend on its batch mates (cosine down to 0.988 measured), and what a
        model was trained on would differ from what it is served. One at a time is
        also faster here (no padding). ``workers`` runs texts on parallel threads.
        """
        ids = self.token_ids(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if workers <= 1 or len(texts) < 2:
            for i, seq in enumerate(ids):
                out[i] = self.encode_one(seq)
            return out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, vector in enumerate(pool.map(self.encode_one, ids)):
                out[i] = vector
        return out


class StaticEncoder(_Truncating):
    """Text -> L2-normalised mean of static token vectors (MiniLM distilled offline).

    Tokenizes and truncates exactly like `OnnxEncoder`, then averages the rows of
    ``static_encoder.npy`` (shape ``(vocab_size, dim)``, float32, loaded with
    ``allow_pickle=False``) for the text's tokens, ``[CLS]`` and ``[SEP]`` left
    out; a text without tokens gets the vector of ``[CLS] [SEP]``. No batching
    effect: each text's vector depends on its own tokens only.

    Parameters
    ----------
    model_dir : path
        Folder holding ``static_encoder.npy`` and ``tokenizer.json``.
    max_tokens, head_tokens : int
        As for `OnnxEncoder`.
    intra_op_threads : int
        Ignored (numpy); accepted so both encoders are built alike.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_tokens: int = 256,
        head_tokens: int = 64,
        intra_op_threads: int = 1,
    ) -> None:
        self.model_dir = model_dir = Path(model_dir)
        self.max_tokens = max_tokens
        self.head_tokens = head_tokens
        self.tokenizer = _load_tokenizer(model_dir)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        vectors = np.load(model_dir / STATIC_ENCODER_FILE, allow_pickle=False)
        if vectors.ndim != 2 or vectors.shape[0] < self.tokenizer.get_vocab_size():
            raise ValueError(
                f"{model_dir / STATIC_ENCODER_FILE} has shape {vectors.shape}; expected "
                f"(vocab_size >= {self.tokenizer.get_vocab_size()}, dim)."
            )
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.dim = int(self.vectors.shape[1])

    def encode_one(self, ids: list[int]) -> np.ndarray:
        """Embedding of one token-id sequence (special tokens at both ends), ``(dim,)``."""
        body = ids[1:-1] if len(ids) > 2 else ids
        vector = self.vectors[body].mean(axis=0)
        return vector / max(float(np.sqrt(vector @ vector)), 1e-12)

    def encode_text(self, text: str) -> np.ndarray:
        """Embedding of one text, ``(dim,)``; equals ``encode([text])[0]``."""
        ids = self.tokenizer.encode(self._clip_chars(text), add_special_tokens=False).ids
        return self.encode_one([self.cls_id, *self._body_ids(ids), self.sep_id])

    def encode(self, texts: list[str], workers: int = 1) -> np.ndarray:
        """Embeddings, shape ``(len(texts), dim)``, float32, unit norm."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, seq in enumerate(self.token_ids(texts)):
            out[i] = self.encode_one(seq)
        return out


ENCODERS = {"minilm": OnnxEncoder, "static": StaticEncoder}


def make_encoder(
    kind: str,
    model_dir: str | Path,
    *,
    max_tokens: int = 256,
    head_tokens: int = 64,
    intra_op_threads: int = 1,
) -> OnnxEncoder | StaticEncoder:
    """The encoder named ``kind`` (a `FeatureSpec.encoder`), loaded from ``model_dir``."""
    if kind not in ENCODERS:
        raise ValueError(f"Unknown encoder {kind!r}; known: {sorted(ENCODERS)}.")
    return ENCODERS[kind](
        model_dir, max_tokens=max_tokens, head_tokens=head_tokens, intra_op_threads=intra_op_threads
    )
