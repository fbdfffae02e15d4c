"""The run-time sentence encoder: MiniLM exported to ONNX, run by onnxruntime with
the `tokenizers` tokenizer. Training featurizes through this same class, so the
vectors a model was fit on are the vectors it is served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"

# Characters kept per token of budget before tokenizing: bounds tokenizer time on
# huge prompts (a 100 kB paste) without changing the kept tokens in practice.
_CHARS_PER_TOKEN = 12


class OnnxEncoder:
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
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.max_tokens = max_tokens
        self.head_tokens = head_tokens
        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        # The shipped tokenizer.json pads and truncates to 128: we do both ourselves.
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
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

    def _clip_chars(self, text: str) -> str:
        budget = self.max_tokens * _CHARS_PER_TOKEN
        if len(text) <= budget:
            return text
        head = self.head_tokens * _CHARS_PER_TOKEN
        return text[:head] + "\n" + text[len(text) - (budget - head) :]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, head+tail truncated to ``max_tokens`` with special tokens."""
        encodings = self.tokenizer.encode_batch(
            [self._clip_chars(t) for t in texts], add_special_tokens=False
        )
        body = self.max_tokens - 2
        tail = body - self.head_tokens
        out = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) > body:
                ids = ids[: self.head_tokens] + (ids[len(ids) - tail :] if tail else [])
            out.append([self.cls_id, *ids, self.sep_id])
        return out

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
