"""Names kept importable for ported scripts that cannot run here: each says what to use instead."""

from __future__ import annotations

import importlib.util

import pytest

import daskseg as gp


@pytest.mark.parametrize(
    "cls, instead", [(gp.DvidSource, "ZarrSource"), (gp.KlbSource, "ZarrSource"), (gp.ProducerPool, "PreCache")]
)
def test_unsupported_names_raise_naming_the_alternative(cls, instead):
    with pytest.raises(NotImplementedError, match=instead):
        cls("anything", key="value")


@pytest.mark.skipif(importlib.util.find_spec("daisy") is not None, reason="daisy is installed")
def test_daisy_request_blocks_without_daisy_points_to_daskseg_blockwise():
    with pytest.raises(ImportError, match="daskseg.blockwise"):
        gp.DaisyRequestBlocks(gp.BatchRequest(), {})
