"""capped_context: a chat never asks a model for more context than it reads."""

from __future__ import annotations

import doctest
from dataclasses import replace

import pytest

from gemmatui.core import catalog
from gemmatui.core.catalog import VARIANTS, capped_context, get_variant


@pytest.mark.parametrize(
    ("model", "requested", "expected"),
    [
        ("1b", 131072, 32768),  # 1B reads 32k
        ("gemma3:1b-it-qat", 32768, 32768),
        ("1B", 4096, 4096),  # below the maximum: as asked
        ("4b", 1048576, 131072),
        ("gemma3:27b-it-qat", 131072, 131072),
        ("llama3.2:3b", 1048576, 1048576),  # not ours: Ollama's business
        ("gemma3:12b", 262144, 262144),  # the non-QAT build is outside the catalogue
    ],
)
def test_capped_context_lowers_to_the_models_maximum(
    model: str, requested: int, expected: int
) -> None:
    assert capped_context(model, requested) == expected


def test_capped_context_prefers_the_installed_maximum() -> None:
    """/api/show's gemma3.context_length (through variants_as_installed) wins."""
    one = get_variant("1b")
    installed = tuple(
        replace(v, arch=replace(v.arch, context_length=16384)) if v.key == "1b" else v
        for v in VARIANTS
    )
    assert capped_context(one.tag, 131072, installed) == 16384
    assert capped_context("4b", 131072, installed) == 131072


def test_capped_context_doctest() -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(catalog.capped_context, "capped_context", globs=vars(catalog)):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
