"""Block processors: per-process state caching, context cropping, Scan-like tiling."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi

from daskseg.blockwise.processor import BlockProcessor, FunctionProcessor, TiledProcessor, tile_positions


def tile_forward(batch: np.ndarray) -> np.ndarray:
    """Valid 3x3x3 box sum of each (4, 6, 6) tile plus the tile's mean: depends on where tiles are cut."""
    out = []
    for tile in batch:
        box = ndi.correlate(tile.astype(np.float64), np.ones((3, 3, 3)), mode="constant")[1:-1, 1:-1, 1:-1]
        out.append(np.stack([box, box * 0 + tile.mean()]))
    return np.asarray(out, dtype=np.float32)


class BoxTiles(TiledProcessor):
    def __init__(self, batch_size=1):
        super().__init__((4, 6, 6), (2, 4, 4), output_channels=(2,), batch_size=batch_size)

    def setup(self):
        return tile_forward


def scan_reference(raw: np.ndarray, processor: TiledProcessor) -> np.ndarray:
    """What one Scan over the whole valid output gives: tiles every output shape, the last moved
    back, later tiles overwriting earlier ones."""
    context = processor.input_shape - processor.output_shape_tile
    out_shape = tuple(s - c for s, c in zip(raw.shape, context))
    out = np.zeros(processor.output_channels + out_shape, dtype=np.float32)
    axes = [tile_positions(w, o) for w, o in zip(out_shape, processor.output_shape_tile)]
    for p in itertools.product(*axes):
        tile = raw[tuple(slice(s, s + n) for s, n in zip(p, processor.input_shape))]
        where = tuple(slice(s, s + n) for s, n in zip(p, processor.output_shape_tile))
        out[(Ellipsis, *where)] = tile_forward(tile[None])[0]
    return out


def test_tile_positions_move_the_last_tile_back():
    assert tile_positions(10, 4) == [0, 4, 6]
    assert tile_positions(8, 4) == [0, 4]
    assert tile_positions(4, 4) == [0]
    with pytest.raises(ValueError):
        tile_positions(3, 4)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_tiled_block_equals_one_scan(batch_size):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 255, (9, 13, 15)).astype(np.uint8)
    processor = BoxTiles(batch_size)
    assert tuple(processor.context_neg) == (1, 1, 1) and tuple(processor.context_pos) == (1, 1, 1)
    assert processor(raw).shape == (2, 7, 11, 13)
    np.testing.assert_array_equal(processor(raw), scan_reference(raw, processor))


def test_state_is_built_once_per_process():
    calls = []

    class Counting(BlockProcessor):
        context_neg = context_pos = (0, 0)

        def cache_key(self):
            return ("counting-test",)

        def setup(self):
            calls.append(1)
            return 10

        def process(self, state, raw):
            return raw + state

    assert Counting()(np.zeros((2, 2)))[0, 0] == 10
    assert Counting()(np.ones((2, 2)))[0, 0] == 11  # a second instance with the same key reuses the state
    assert len(calls) == 1


def test_function_processor_crops_same_shape_results():
    raw = np.arange(5 * 6 * 7, dtype=np.float64).reshape(5, 6, 7)
    proc = FunctionProcessor(functools.partial(ndi.uniform_filter, size=3), context=1, name="mean3")
    np.testing.assert_array_equal(proc(raw), ndi.uniform_filter(raw, size=3)[1:-1, 1:-1, 1:-1])
    valid = FunctionProcessor(lambda x: x[1:-1, 2:-1, :], context=(1, 2, 0), context_pos=(1, 1, 0))
    assert valid(raw).shape == (3, 3, 7)
    assert valid.identity()["context_neg"] == [1, 2, 0]
