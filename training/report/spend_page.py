"""spend.html (temporary): the spend.json dict in a <pre>, until the real page lands."""

from __future__ import annotations

import html
import json
from pathlib import Path


def write_spend_page(spend: dict, out_dir: Path) -> Path:
    """Write ``out_dir/spend.html`` from the ``spend.json`` dict; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "spend.html"
    body = html.escape(json.dumps(spend, indent=2))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>What the spend bought"
        f"</title></head><body><pre>{body}</pre></body></html>\n",
        encoding="utf-8",
    )
    return path
