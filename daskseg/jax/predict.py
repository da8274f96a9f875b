"""``Predict``: run a trained JAX model on each passing batch (``gp.jax.Predict``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from ..array import ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import RequestError, ShapeError, SpecError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchFilter
from .checkpoint import check_fits_network
from .compile_cache import enable_compilation_cache
from .inference import Predictor, resolve_checkpoint
from .model import FlaxUNetModel, is_model_protocol
from .outputs import output_spec, place_output

logger = logging.getLogger(__name__)


class Predict(BatchFilter):
    """Predict with a trained model on every batch that passes; outputs go into the batch.

    The arguments come in gunpowder 1.5's ``gunpowder.jax.Predict`` order, positionally as well
    (``Predict(model, inputs, outputs, array_specs, checkpoint, spawn_subprocess)``); daskseg's own
    (``graph``, ``conv_impl``, ``allow_pickle``) are keyword-only after them.

    Args:
        model: the Flax U-Net's network config (``NetConfig``, dict, JSON path, or a name such as
            ``"test_net"`` for ``test_net_config.json``), a ``UNetConfig``, a ``FlaxUNetModel``, or
            any object of gunpowder's JAX model protocol (``initialize``/``forward``).
        inputs: ``{name: ArrayKey}``, e.g. ``{net_config['raw']: raw}``.
        outputs: ``{name: ArrayKey}``, e.g. ``{net_config['pred_affs']: pred_affs}``.
        array_specs: ``{ArrayKey: ArraySpec}`` of the outputs; as in the tutorial, the ROI sets
            where predictions can be asked for (``raw_roi.grow(-context, -context)``). Without one,
            the Flax U-Net's outputs are provided on the input's ROI shrunk by half the context on
            each side.
        checkpoint: a checkpoint file (``train_net_checkpoint_1000``) or a checkpoint basename
            (its newest checkpoint is used). Without one, the model predicts with its initial
            parameters (a warning is logged).
        spawn_subprocess: accepted for gunpowder compatibility; prediction runs in this process.
        graph: the tutorial's name for ``model`` (a network config path or name).
        conv_impl: override the network's convolution formulation (``"auto"``, ``"xla"``...).
        allow_pickle: also load pickled checkpoints (gunpowder's JAX format). A pickle can run
            arbitrary code when loaded: allow it only for files you trust.

    For the Flax U-Net, the input ROI asked from upstream is the requested output ROI grown by the
    network's context (half on each side), so a request for the outputs alone suffices; if the
    input is requested as well, upstream is asked for both. The output shape must be one the
    network produces; a ``ShapeError`` names the nearest valid ones. Protocol models, whose context
    is unknown, need their inputs in the request (as in gunpowder); their outputs are placed centred
    on the input ROI and cropped to the request.
    """

    def __init__(
        self,
        model: Any = None,
        inputs: Mapping[str, ArrayKey] | None = None,
        outputs: Mapping[str, ArrayKey] | None = None,
        array_specs: Mapping[ArrayKey, ArraySpec] | None = None,
        checkpoint: str | os.PathLike | None = None,
        spawn_subprocess: bool = False,
        *,
        graph: Any = None,
        conv_impl: str | None = None,
        allow_pickle: bool = False,
    ):
        if model is None:
            model = graph
        if model is None:
            raise TypeError("Predict needs a model (a network config, or a GenericJaxModel)")
        if not inputs or not outputs:
            raise TypeError("Predict needs `inputs` and `outputs`: {name: ArrayKey}")
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.array_specs = dict(array_specs or {})
        self.checkpoint = checkpoint
        self.allow_pickle = allow_pickle
        self.spawn_subprocess = spawn_subprocess
        self.predictor: Predictor | None = None
        self.model = None
        self._fallback_params: dict[str, Any] | None = None
        if isinstance(model, FlaxUNetModel):
            arch = model.config if conv_impl is None else model.config.replace(conv_impl=conv_impl)
            self.predictor = Predictor(model.net_config or arch, None, conv_impl=arch.conv_impl)
            self._fallback_params = model._initial_params
        elif is_model_protocol(model):
            self.model = model
        else:
            self.predictor = Predictor(model, None, conv_impl=conv_impl)
        if self.predictor is not None and (len(self.inputs) != 1 or len(self.outputs) != 1):
            raise TypeError(
                f"the Flax U-Net has one input (raw) and one output (affinities); got inputs {sorted(self.inputs)} "
                f"and outputs {sorted(self.outputs)}"
            )
        self.params = None

    # --- geometry ------------------------------------------------------------------------------
    @property
    def _input_key(self) -> ArrayKey:
        return next(iter(self.inputs.values()))

    def _context_world(self) -> tuple[Coordinate, Coordinate] | None:
        """(grow before, grow after) of the input around the output, in world units; None if unknown."""
        if self.predictor is None:
            return None
        vs = self.spec[self._input_key].voxel_size
        ctx = Coordinate(self.predictor.context)
        before = Coordinate(c // 2 for c in ctx)
        return before * vs, (ctx - before) * vs

    def setup(self) -> None:
        for key in self.inputs.values():
            if key not in self.spec:
                raise SpecError(f"Predict input {key} is not provided upstream (it provides {sorted(self.spec)})")
        in_spec = self.spec[self._input_key]
        context = self._context_world()
        for key in self.outputs.values():
            spec = output_spec(self.array_specs, key)
            if spec.voxel_size is None:
                spec.voxel_size = in_spec.voxel_size
            if spec.roi is None and context is not None and in_spec.roi is not None:
                spec.roi = in_spec.roi.grow(-context[0], -context[1])
            self.provides(key, spec)
        if self.spawn_subprocess:
            logger.warning("Predict: spawn_subprocess is not supported; prediction runs in this process")
        self.start()

    def start(self) -> None:
        """Load the checkpoint's parameters."""
        if self.checkpoint is None:
            logger.warning("Predict: no checkpoint given; predicting with the model's initial parameters")
            if self.predictor is not None and self._fallback_params is not None:
                self.predictor.params = jax.tree.map(np.asarray, self._fallback_params)
            return
        loaded = resolve_checkpoint(self.checkpoint, allow_pickle=self.allow_pickle)
        logger.info("Predict: parameters of %s (iteration %d)", loaded.path, loaded.iteration)
        if self.predictor is not None:
            check_fits_network(loaded, self.predictor.architecture)
            self.predictor = Predictor(
                self.predictor.net_config or self.predictor.architecture,
                loaded.state,
                conv_impl=self.predictor.architecture.conv_impl,
            )
        else:
            self.params = jax.device_put(loaded.state)

    def _output_roi(self, request: BatchRequest) -> Roi | None:
        asked = (request[key].roi for key in self.outputs.values() if key in request)
        rois = [roi for roi in asked if roi is not None]
        if not rois:
            return None
        total = rois[0]
        for roi in rois[1:]:
            total = total.union(roi)
        return total

    def _needed_input_roi(self, out_roi: Roi) -> Roi:
        context = self._context_world()
        if context is None or self.predictor is None:
            raise RuntimeError("Predict: the input ROI a model needs is known only for the Flax U-Net")
        before, after = context
        need = out_roi.grow(before, after)
        vs = self.spec[self._input_key].voxel_size
        shape = tuple(need.shape / vs)
        arch = self.predictor.architecture
        if not arch.shapes.is_valid(shape):
            out_shape = tuple(out_roi.shape / vs)
            smaller, larger = arch.shapes.nearest_valid_input_shapes(shape)
            options = [s for s in (smaller, larger) if s is not None]
            raise ShapeError(
                f"Predict: requested output ROI {out_roi} ({out_shape} voxels) needs input {shape}, which the "
                f"network cannot process; nearest valid output shapes: "
                + ", ".join(str(arch.output_shape(s)) for s in options)
            )
        return need

    def prepare(self, request: BatchRequest) -> BatchRequest | None:
        out_roi = self._output_roi(request)
        if out_roi is None:
            return None
        deps = BatchRequest()
        if self.predictor is not None:
            key = self._input_key
            need = self._needed_input_roi(out_roi)
            asked_input = request[key].roi if key in request else None
            if asked_input is not None:
                need = need.union(asked_input)
            spec = request[key].copy() if key in request else ArraySpec()
            spec.roi = need
            deps[key] = spec
            return deps
        for name, key in self.inputs.items():
            if key not in request:
                raise RequestError(
                    f"Predict: input {key} (model input {name!r}) must be in the request for a model whose "
                    f"context is unknown; request it with the network's input size"
                )
            deps[key] = request[key].copy()
        return deps

    # --- prediction ------------------------------------------------------------------------------
    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        out_roi = self._output_roi(request)
        if out_roi is None:
            return None
        centre: Roi | None
        if self.predictor is not None:
            raw = batch[self._input_key]
            need = self._needed_input_roi(out_roi)
            if raw.spec.roi != need:
                raw = raw.crop(need)
            # the U-Net has one output, whatever it is called in ``outputs``
            outputs = {next(iter(self.outputs)): self.predictor(raw.data)}
            centre = need
        elif self.model is not None:
            inputs = {name: jax.device_put(batch[key].data) for name, key in self.inputs.items()}
            if self.params is None:
                seed = request.random_seed if request.random_seed is not None else 0
                self.params = self.model.initialize(jax.random.PRNGKey(seed % (2**32)), inputs)
            if not hasattr(self, "_forward"):
                enable_compilation_cache()
                self._forward = jax.jit(self.model.forward)
            outputs = self._forward(self.params, inputs)
            centre = batch[self._input_key].spec.roi
        else:
            raise RuntimeError("Predict has neither a Flax U-Net nor a protocol model")
        for name, key in self.outputs.items():
            if key not in request:
                continue
            if name not in outputs:
                raise KeyError(f"Predict: the model returned no output {name!r} for {key}; it returned {sorted(outputs)}")
            data = np.asarray(outputs[name])
            batch[key] = place_output(key, data, self.spec[key], request[key].roi, centre)
        return batch
