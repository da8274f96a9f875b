"""Block processors: picklable descriptions of "input block in, output block out" with context.

A processor is sent to the workers with every task, so it holds only small, picklable things
(paths, parameters). Its heavy state (a loaded, compiled network) is built by ``setup()`` once per
worker process, on first use, and cached there under ``cache_key()`` for all later blocks.

``process(raw)`` takes an input block whose spatial shape is the output block's grown by the
context, and returns the output block (``output_channels + spatial shape``), in its natural dtype
(float32 for networks).

``FunctionProcessor`` wraps a plain numpy function (useful for tests and for simple filters);
``daskseg.blockwise.network.NetworkProcessor`` runs a trained U-Net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from ..geometry import Coordinate
from ..worker_state import STATE

logger = logging.getLogger(__name__)

class BlockProcessor:
    """Base class of block processors.

    Subclasses set (in ``__init__``, from cheap information only):

    - ``context_neg``, ``context_pos`` (Coordinate): voxels of input needed before/after the output;
    - ``output_channels`` (tuple[int, ...]): the channel shape of the output (``()`` for none);
    - ``output_dtype`` (numpy dtype): the dtype ``process`` returns;
    - ``block_step`` (Coordinate): block shapes should be multiples of this (a network's output
      shape, so that tiles inside blocks fall where they would in one big scan); default 1;
    - ``min_block_shape`` (Coordinate): the smallest output block ``process`` can produce;
    - ``multithreaded`` (bool): whether ``process`` uses all cores by itself (as XLA does), so that
      a new LocalCluster should have one worker rather than one per core;

    and implement ``setup()`` (optional) and ``process(state, raw)``.
    """

    context_neg: Coordinate
    context_pos: Coordinate
    output_channels: tuple[int, ...] = ()
    output_dtype: np.dtype = np.dtype("float32")
    block_step: Coordinate | None = None
    min_block_shape: Coordinate | None = None
    multithreaded: bool = False

    @property
    def dims(self) -> int:
        return len(self.context_neg)

    def cache_key(self) -> Hashable:
        """What identifies the state ``setup`` builds; equal keys share one state in a process."""
        return (type(self).__module__, type(self).__qualname__, id(self))

    def identity(self) -> dict:
        """A JSON-able description of what this processor computes (goes into the done record)."""
        return {"type": f"{type(self).__module__}.{type(self).__qualname__}"}

    def output_attributes(self) -> dict:
        """What the output's ``daskseg`` attributes should record about its values (e.g. the
        affinity neighbourhood of a network's channels); the default: nothing."""
        return {}

    def check_input(self, raw: Any) -> None:
        """Refuse an input ``Dataset`` this processor cannot use (its dtype, channels, values), on the
        client before the output is created; the default accepts any. Raise a ``DaskSegError``
        subclass (one line naming the dataset, the problem and the fix)."""

    def setup(self) -> Any:
        """Build the heavy state (load and compile a network); called once per worker process."""
        return None

    def process(self, state: Any, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> Any:
        """The state of this process, built on first use and then reused (``daskseg.worker_state``,
        kind ``"processors"``)."""

        def build() -> Any:
            logger.info("setting up %r in this process", self)
            return self.setup()

        return STATE.get("processors", self.cache_key(), build)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Process one input block with this process's cached state."""
        return self.process(self.state(), raw)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The spatial output shape for a spatial input shape."""
        return tuple(Coordinate(input_shape[-self.dims :]) - self.context_neg - self.context_pos)


def cached_setups() -> int:
    """How many processor states this process holds (for tests and diagnostics)."""
    return STATE.count("processors")


class FunctionProcessor(BlockProcessor):
    """Apply a numpy function to every block, keeping only the valid part of its result.

    Args:
        function (callable): ``function(raw_block) -> ndarray``. Picklable (a module-level function or
            a ``functools.partial`` of one). It may return the input's spatial shape (as
            ``scipy.ndimage`` filters do; the context is then cropped away) or the output shape.
        context (int | Sequence[int]): voxels of context the function needs on each side (or
            ``context_neg`` only, with ``context_pos`` given separately).
        context_pos (Sequence[int], optional): voxels of context after the output, if different.
        dims (int): spatial dimensions (default 3).
        output_channels (Sequence[int]): channel shape of the function's result.
        output_dtype: dtype of the result (default float32).
        name (str, optional): a name for the done record (default: the function's name).
    """

    def __init__(
        self,
        function: Callable[[np.ndarray], np.ndarray],
        context: int | Sequence[int] = 0,
        context_pos: int | Sequence[int] | None = None,
        dims: int = 3,
        output_channels: Sequence[int] = (),
        output_dtype: Any = "float32",
        name: str | None = None,
    ):
        zero = Coordinate((0,) * dims)
        self.function = function
        self.context_neg = zero + context
        self.context_pos = self.context_neg if context_pos is None else zero + context_pos
        self.output_channels = tuple(int(c) for c in output_channels)
        self.output_dtype = np.dtype(output_dtype)
        self.block_step = Coordinate((1,) * dims)
        self.min_block_shape = Coordinate((1,) * dims)
        self.name = name or getattr(function, "__qualname__", None) or repr(function)

    def cache_key(self) -> Hashable:
        return ("FunctionProcessor", self.name)

    def identity(self) -> dict:
        return {
            "type": "FunctionProcessor",
            "name": self.name,
            "context_neg": list(self.context_neg),
            "context_pos": list(self.context_pos),
        }

    def process(self, state: Any, raw: np.ndarray) -> np.ndarray:
        out = np.asarray(self.function(raw))
        dims = self.dims
        in_shape = raw.shape[-dims:]
        want = self.output_shape(raw.shape)
        if tuple(out.shape[-dims:]) == tuple(in_shape) and tuple(in_shape) != want:
            crop = tuple(slice(n, s - p) for n, p, s in zip(self.context_neg, self.context_pos, in_shape))
            index: tuple[Any, ...] = (Ellipsis, *crop)
            out = out[index]
        return out

    def __repr__(self) -> str:
        return f"FunctionProcessor({self.name}, context -{tuple(self.context_neg)}/+{tuple(self.context_pos)})"


def tile_positions(size: int, tile: int) -> list[int]:
    """Starts of ``tile``-sized tiles covering ``[0, size)`` in steps of ``tile``, the last moved back
    to end at ``size`` (as ``Scan`` places its chunks)."""
    if tile > size:
        raise ValueError(f"a tile of {tile} voxels does not fit into {size}")
    return list(range(0, size - tile, tile)) + [size - tile]


class TiledProcessor(BlockProcessor):
    """Run a fixed-shape forward function over a block tile by tile, as ``Scan`` would.

    The block's output is covered by tiles of ``output_shape`` placed every ``output_shape`` voxels
    from the block's begin, the last tile of each dimension moved back to end at the block's end
    (overlapping its neighbour, which it overwrites). With block shapes that are multiples of
    ``output_shape`` the tiles of all blocks together fall exactly where one ``Scan`` over the whole
    output ROI puts its chunks, so blockwise and in-process predictions agree.

    Subclasses implement ``setup()`` returning ``forward(batch) -> batch``, which maps
    ``(batch_size, [in_channels,] *input_shape)`` float32 arrays to
    ``(batch_size, *output_channels, *output_shape)``; and may override ``prepare(raw)`` (e.g. to
    normalise intensities), applied to the whole input block first.

    Args:
        input_shape, output_shape (Sequence[int]): the forward's spatial shapes in voxels.
        output_channels (Sequence[int]): channel shape of the forward's output.
        batch_size (int): tiles per forward call (the last batch is padded to keep one compiled shape).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_shape: Sequence[int],
        output_channels: Sequence[int] = (),
        batch_size: int = 1,
    ):
        self.input_shape = Coordinate(input_shape)
        self.output_shape_tile = Coordinate(output_shape)
        context = self.input_shape - self.output_shape_tile
        if any(c < 0 for c in context):
            raise ValueError(f"output shape {tuple(output_shape)} is larger than input shape {tuple(input_shape)}")
        # the output sits centred in the input, as BatchRequest.add places it
        self.context_neg = context // 2
        self.context_pos = context - self.context_neg
        self.output_channels = tuple(int(c) for c in output_channels)
        self.output_dtype = np.dtype("float32")
        self.block_step = self.output_shape_tile
        self.min_block_shape = self.output_shape_tile
        self.batch_size = max(1, int(batch_size))

    def prepare(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float32, copy=False)

    def process(self, state: Any, raw: np.ndarray) -> np.ndarray:
        forward = state
        dims = self.dims
        x = self.prepare(raw)
        lead = x.shape[:-dims]
        block_out = self.output_shape(x.shape)
        out = np.empty(self.output_channels + tuple(block_out), dtype=np.float32)
        axes = [tile_positions(w, o) for w, o in zip(block_out, self.output_shape_tile)]
        tiles = [tuple(p) for p in np.ndindex(*[len(a) for a in axes])]
        tiles = [tuple(axes[d][i] for d, i in enumerate(t)) for t in tiles]
        for start in range(0, len(tiles), self.batch_size):
            batch = tiles[start : start + self.batch_size]
            inputs = np.zeros((self.batch_size, *lead, *self.input_shape), dtype=np.float32)
            for i, p in enumerate(batch):
                read: tuple[Any, ...] = (Ellipsis, *(slice(s, s + n) for s, n in zip(p, self.input_shape)))
                inputs[i] = x[read]
            y = np.asarray(forward(inputs))
            for i, p in enumerate(batch):
                write: tuple[Any, ...] = (Ellipsis, *(slice(s, s + n) for s, n in zip(p, self.output_shape_tile)))
                out[write] = y[i]
        return out
