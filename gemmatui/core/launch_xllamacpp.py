"""``python -m gemmatui.core.launch_xllamacpp`` — llama-server from the xllamacpp wheel.

Takes the subset of llama-server's flags that :func:`gemmatui.core.launch.command_line`
writes, maps them onto ``xllamacpp.CommonParams`` and serves until the process is
ended, so ``gemmatui serve`` (and a person pasting ``fit --engine llama-server``'s
command line) runs the same thing with or without a ``llama-server`` binary.

``xllamacpp.Server`` returns once the model is loaded and serves from its own threads;
destroying it can hang, so this process never does: it sleeps until it is signalled,
or until the process that started it is gone (then it exits too, so a killed
``gemmatui serve`` leaves no server behind).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

#: The log verbosity at which xllamacpp prints llama.cpp's buffer-size lines (3 does not).
_VERBOSITY = 4


def parser() -> argparse.ArgumentParser:
    """The llama-server flags this entry takes (same spellings)."""
    p = argparse.ArgumentParser(
        prog="python -m gemmatui.core.launch_xllamacpp",
        description="llama-server (xllamacpp) with the flags gemmatui writes",
    )
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--mmproj")
    p.add_argument("-c", "--ctx-size", type=int, default=4096)
    p.add_argument("-np", "--parallel", type=int, default=1)
    p.add_argument("-ctk", "--cache-type-k", default="f16")
    p.add_argument("-ctv", "--cache-type-v", default="f16")
    p.add_argument("-fa", "--flash-attn", choices=("on", "off", "auto"), default="auto")
    p.add_argument("-b", "--batch-size", type=int, default=2048)
    p.add_argument("-ub", "--ubatch-size", type=int, default=512)
    p.add_argument("-ngl", "--n-gpu-layers", type=int, default=-1)
    p.add_argument("--chat-template")
    p.add_argument("--jinja", action="store_true")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("-a", "--alias")
    p.add_argument("-t", "--threads", type=int)
    return p


def params(args: argparse.Namespace, x: Any) -> Any:
    """``xllamacpp.CommonParams`` for the parsed flags (``x`` is the module).

    Raises:
        SystemExit: A cache type xllamacpp does not know (exit 1, one line).
    """
    p = x.CommonParams()
    p.model.path = args.model
    if args.mmproj:
        p.mmproj.path = args.mmproj
    p.n_ctx = args.ctx_size
    p.n_parallel = args.parallel
    p.n_batch = args.batch_size
    p.n_ubatch = args.ubatch_size
    p.kv_unified = False  # as llama-server with an explicit -np (and as Ollama starts it)
    p.swa_full = False
    for field, name in (("cache_type_k", args.cache_type_k), ("cache_type_v", args.cache_type_v)):
        kind = getattr(x.ggml_type, f"GGML_TYPE_{name.upper()}", None)
        if kind is None:
            raise SystemExit(f"error: unknown cache type {name!r}")
        setattr(p, field, kind)
    fa = x.llama_flash_attn_type
    p.flash_attn_type = {
        "on": fa.LLAMA_FLASH_ATTN_TYPE_ENABLED,
        "off": fa.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        "auto": fa.LLAMA_FLASH_ATTN_TYPE_AUTO,
    }[args.flash_attn]
    p.n_gpu_layers = args.n_gpu_layers
    if args.chat_template:
        # A built-in template's name only counts with jinja off (with jinja on the
        # name would be taken as the template text itself).
        p.chat_template = args.chat_template
        p.use_jinja = bool(args.jinja)
    elif args.jinja:
        p.use_jinja = True
    p.hostnames = [args.host]
    p.port = args.port
    if args.alias:
        p.model_alias = {args.alias}  # a set of names in current llama.cpp
    if args.threads:
        p.cpuparams.n_threads = args.threads
    p.endpoint_props = True
    p.endpoint_slots = True
    p.endpoint_metrics = True
    p.verbosity = _VERBOSITY
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, load, serve until signalled or orphaned."""
    args = parser().parse_args(argv)
    import xllamacpp

    parent = os.getppid()
    server = xllamacpp.Server(params(args, xllamacpp))
    print(f"gemmatui: xllamacpp listening at {server.listening_address}", file=sys.stderr, flush=True)
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)  # the starter is gone; never wait on the server's destructor


if __name__ == "__main__":  # pragma: no cover - run as a module
    raise SystemExit(main())
