"""``Train``: one jit-compiled training step of a JAX model per passing batch (``gp.jax.Train``)."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, overload

import jax
import numpy as np

from ..array import ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, RequestError, SpecError
from ..geometry import Roi
from ..pipeline import BatchFilter
from . import checkpoint as ckpt
from .compile_cache import enable_compilation_cache
from .model import PMAP_AXIS, FlaxUNetModel, is_model_protocol
from .outputs import output_spec, place_output

logger = logging.getLogger(__name__)

LOG_FIELDS = ("iteration", "loss", "time_s", "timestamp")


Inputs = Mapping[str, ArrayKey | np.ndarray]
Outputs = Mapping[str | int, ArrayKey]
LossArg = str | Callable[..., Any]
ValidationFn = Callable[[Any, Any], "float | Mapping[str, float]"]

# gunpowder.tensorflow.Train's leading arguments, as the tutorial's train.py passes them
_TENSORFLOW_ORDER = ("optimizer", "loss", "inputs", "outputs", "gradients")


def _looks_like_io_dict(value: object) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, (ArrayKey, np.ndarray)) for v in value.values())


def _tensorflow_order(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``Train(model, optimizer, loss, inputs, outputs, gradients, **kwargs)``."""
    if len(args) > len(_TENSORFLOW_ORDER):
        raise TypeError(
            f"Train(model, optimizer, ...): at most {len(_TENSORFLOW_ORDER)} positional arguments after the model "
            f"({', '.join(_TENSORFLOW_ORDER)}) in this order; give the others by keyword"
        )
    named = dict(zip(_TENSORFLOW_ORDER, args))
    twice = sorted(set(named) & set(kwargs))
    if twice:
        raise TypeError(f"Train got multiple values for argument(s) {', '.join(twice)}")
    return {**named, **kwargs}


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back for the ``with`` block and deliver it right after.

    A training step donates the old state to the new one; interrupted half-way, neither could be
    checkpointed. Deferred, Ctrl-C ends training between steps, with the finished step logged and
    checkpointed. Outside the main thread (where no signal handler can be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


class Train(BatchFilter):
    """Train a JAX model: one jit-compiled optimisation step for every batch that passes.

    The arguments come in gunpowder 1.5's ``gunpowder.jax.Train`` order, positionally as well
    (``Train(model, inputs, outputs, gradients, array_specs, checkpoint_basename, save_every, ...)``);
    daskseg's own arguments (``optimizer``, ``loss``, ``validation_fn``, ``validation_every``,
    ``seed``, ``allow_pickle``) are keyword-only after them. The tutorial's
    ``gunpowder.tensorflow.Train`` order, ``Train(model, optimizer, loss, inputs, outputs, gradients)``,
    is recognised too: when the second positional argument is not a dict of ArrayKeys/arrays, it and
    the next (up to four) are read as ``optimizer, loss, inputs, outputs, gradients``.

    Args:
        model: what to train. Either an object of gunpowder's JAX model protocol
            (``GenericJaxModel``: ``initialize``, ``forward``, ``train_step``), or the easy path: a Flax
            ``UNet``, a ``UNetConfig``, a network config (``NetConfig``, dict, JSON path, or a name
            such as ``"train_net"`` for ``train_net_config.json`` written by ``daskseg net create``),
            trained with ``optimizer`` and ``loss`` (see ``FlaxUNetModel``).
        inputs: ``{name: ArrayKey or ndarray}``: the model's inputs, e.g.
            ``{net_config['raw']: raw, net_config['gt_affs']: gt_affs, net_config['loss_weights']: w}``.
        outputs: ``{name: ArrayKey}``: model outputs written into the batch when requested downstream.
        gradients: ``{name: ArrayKey}``: d(loss)/d(output ``name``), for snapshots (models whose
            ``train_step`` returns a 4th value with these; the Flax U-Net does).
        array_specs: ``{ArrayKey: ArraySpec}`` for the outputs/gradients (e.g. another voxel size);
            fields left ``None`` are filled in (voxel size of the inputs, float32).
        checkpoint_basename: checkpoints are ``{basename}_checkpoint_{iteration}``; training resumes
            from the newest one (parameters, optimizer state, iteration). While the node is set up
            it holds ``{basename}.lock``: a second process training on the same basename fails at
            setup with a ``CheckpointLockedError``. Default, as gunpowder
            names them: after the model when it is given by name or config path
            (``Train("train_net", ...)`` saves ``train_net_checkpoint_<i>``;
            ``"nets/train_net_config.json"`` saves ``nets/train_net_checkpoint_<i>``), else
            ``model``.
        save_every: checkpoint every this many iterations (and at the end of training).
        keep_n_checkpoints: keep only the newest N checkpoints (default: keep all).
        log_dir: directory of the CSV log ``train_log.csv``; default ``{basename}_log.csv``.
        log_every: write the loss and iteration time to the log every this many iterations. The
            log is written before each checkpoint and synced with it, and at teardown (also after
            Ctrl-C), so it holds every logged iteration up to the last checkpoint; a resumed run
            drops rows after the checkpoint it resumes from. Ctrl-C is held back while a step runs
            and ends training between steps (the last step is then checkpointed at teardown).
        spawn_subprocess: accepted for gunpowder compatibility; training always runs in this process.
        n_devices: devices to train on data-parallel (``jax.pmap``; the batch axis is split); default
            all local devices of the default backend. Arrays then need a leading batch axis divisible
            by ``n_devices`` (use ``gp.Stack``).
        validate_fn: ``f(model, state) -> float`` (or a dict of floats) called every
            ``validate_every`` iterations; its value is logged (gunpowder's names).
        validate_every: see ``validate_fn``.
        optimizer: optax optimizer or config dict (default: the network config's, else the CREMI
            example's Adam(lr=0.5e-4, b1=0.95, b2=0.999, eps=1e-8)); only for the easy path.
        loss: ``"weighted_mse"`` (default: sum(w·(p−g)²)/count_nonzero(w) on sigmoid affinities,
            with BalanceLabels' weights), ``"mse"`` or ``f(pred, target, weights)``; easy path only.
        validation_fn: daskseg's name for ``validate_fn`` (give one of the two).
        validation_every: daskseg's name for ``validate_every`` (give one of the two).
        seed: parameter initialisation seed of the easy path.
        allow_pickle: resume from a pickled checkpoint (gunpowder's JAX format, daskseg's before
            format 2). A pickle can run arbitrary code when loaded: allow it only for files you
            trust. daskseg itself writes checkpoints that cannot (see ``daskseg.jax.checkpoint``).

    Array layouts: the Flax U-Net takes raw as ``(D, H, W)``, ``(C, D, H, W)``, ``(B, D, H, W)`` or
    ``(B, C, D, H, W)``, targets and weights channels-first with or without the batch axis, and
    returns outputs/gradients as ``(C, d, h, w)`` or ``(B, C, d, h, w)`` to match (see
    ``daskseg.jax.model``). Protocol models get the batch arrays as they are.

    Output ROIs: an output whose spatial shape equals its requested ROI gets that ROI; a larger one
    is placed centred on the first input's ROI (valid convolutions) and cropped to the request.
    """

    @overload
    def __init__(
        self,
        model: Any,
        inputs: Inputs | None = None,
        outputs: Outputs | None = None,
        gradients: Outputs | None = None,
        array_specs: Mapping[ArrayKey, ArraySpec] | None = None,
        checkpoint_basename: str | os.PathLike | None = None,
        save_every: int = 2000,
        keep_n_checkpoints: int | None = None,
        log_dir: str | None = None,
        log_every: int = 1,
        spawn_subprocess: bool = False,
        n_devices: int | None = None,
        validate_fn: ValidationFn | None = None,
        validate_every: int | None = None,
        *,
        optimizer: Any = None,
        loss: LossArg | None = None,
        validation_fn: ValidationFn | None = None,
        validation_every: int | None = None,
        seed: int = 0,
        allow_pickle: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss: LossArg | None = None,
        inputs: Inputs | None = None,
        outputs: Outputs | None = None,
        gradients: Outputs | None = None,
        *,
        array_specs: Mapping[ArrayKey, ArraySpec] | None = None,
        checkpoint_basename: str | os.PathLike | None = None,
        save_every: int = 2000,
        keep_n_checkpoints: int | None = None,
        log_dir: str | None = None,
        log_every: int = 1,
        spawn_subprocess: bool = False,
        n_devices: int | None = None,
        validate_fn: ValidationFn | None = None,
        validate_every: int | None = None,
        validation_fn: ValidationFn | None = None,
        validation_every: int | None = None,
        seed: int = 0,
        allow_pickle: bool = False,
    ) -> None: ...

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        if args and not _looks_like_io_dict(args[0]):
            args, kwargs = (), _tensorflow_order(args, kwargs)
        self._configure(model, *args, **kwargs)

    def _configure(
        self,
        model: Any,
        inputs: Inputs | None = None,
        outputs: Outputs | None = None,
        gradients: Outputs | None = None,
        array_specs: Mapping[ArrayKey, ArraySpec] | None = None,
        checkpoint_basename: str | os.PathLike | None = None,
        save_every: int = 2000,
        keep_n_checkpoints: int | None = None,
        log_dir: str | None = None,
        log_every: int = 1,
        spawn_subprocess: bool = False,
        n_devices: int | None = None,
        validate_fn: ValidationFn | None = None,
        validate_every: int | None = None,
        *,
        optimizer: Any = None,
        loss: LossArg | None = None,
        validation_fn: ValidationFn | None = None,
        validation_every: int | None = None,
        seed: int = 0,
        allow_pickle: bool = False,
    ) -> None:
        if inputs is None:
            raise TypeError("Train needs `inputs`: {name: ArrayKey} of the model's inputs")
        self.inputs = dict(inputs)
        self.outputs = dict(outputs or {})
        self.gradients = dict(gradients or {})
        self.array_specs = dict(array_specs or {})
        if checkpoint_basename is None:
            checkpoint_basename = ckpt.basename_for_model(model) or "model"
        self.checkpoint_basename = os.fspath(checkpoint_basename)
        self.allow_pickle = allow_pickle
        self.save_every = int(save_every)
        self.keep_n_checkpoints = keep_n_checkpoints
        self.log_dir = log_dir
        self.log_every = max(1, int(log_every))
        self.spawn_subprocess = spawn_subprocess
        self.n_devices = n_devices
        if (validate_fn is not None and validation_fn is not None) or (
            validate_every is not None and validation_every is not None
        ):
            raise ArgumentError("Train: give validate_fn/validate_every (gunpowder's names) or validation_fn/"
                                "validation_every, not both")
        self.validation_fn = validation_fn if validation_fn is not None else validate_fn
        self.validation_every = validation_every if validation_every is not None else validate_every
        self.iteration = 0
        self.state: Any = None
        self._step: Callable[..., Any] | None = None
        self._locked = False
        self._log_file: IO[str] | None = None

        if is_model_protocol(model) and not isinstance(model, FlaxUNetModel):
            if optimizer is not None or loss is not None:
                logger.warning(
                    "Train: optimizer/loss are ignored for %s, which brings its own train_step", type(model).__name__
                )
            self.model = model
        elif isinstance(model, FlaxUNetModel):
            self.model = model
        else:
            self.model = FlaxUNetModel(model, optimizer=optimizer, loss=loss, seed=seed)
        self.provided_arrays = list(self.outputs.values()) + list(self.gradients.values())
        for key in self.provided_arrays:
            if not isinstance(key, ArrayKey):
                raise TypeError(f"Train outputs/gradients must map names to ArrayKeys, got {key!r}")

    # --- pipeline protocol ---------------------------------------------------------------------
    def setup(self) -> None:
        voxel_sizes = {
            self.spec[key].voxel_size for key in self.inputs.values() if isinstance(key, ArrayKey) and key in self.spec
        }
        missing = [key for key in self.inputs.values() if isinstance(key, ArrayKey) and key not in self.spec]
        if missing:
            raise SpecError(f"Train inputs {missing} are not provided upstream (it provides {sorted(self.spec)})")
        common = voxel_sizes.pop() if len(voxel_sizes) == 1 else None
        for key in self.provided_arrays:
            spec = output_spec(self.array_specs, key)
            if spec.voxel_size is None and not spec.nonspatial:
                if common is None:
                    raise SpecError(
                        f"Train: the inputs have different voxel sizes and no ArraySpec in array_specs gives one for {key}"
                    )
                spec.voxel_size = common
            self.provides(key, spec)
        if self.spawn_subprocess:
            logger.warning("Train: spawn_subprocess is not supported; training runs in this process")
        self.start()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        for name, key in self.inputs.items():
            if not isinstance(key, ArrayKey):
                continue
            if key not in request:
                raise RequestError(
                    f"Train needs input {key} (model input {name!r}) in the request; add it, e.g. "
                    f"request.add({key}, input_size)"
                )
            deps[key] = request[key].copy()
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        self.train_step(batch, request)
        return batch

    def teardown(self) -> None:
        self.stop()

    # --- training ------------------------------------------------------------------------------
    def start(self) -> None:
        """Pick devices, compile lazily, and resume from the newest checkpoint if there is one."""
        available = jax.local_device_count()
        n = available if self.n_devices is None else int(self.n_devices)
        if n < 1 or n > available:
            raise ValueError(f"n_devices={self.n_devices}, but JAX sees {available} {jax.default_backend()} device(s)")
        self._n = n
        logger.info("Train: %d %s device(s)", n, jax.default_backend())
        enable_compilation_cache()
        if not self._locked:  # before anything of the basename is read, cleaned or truncated
            ckpt.acquire_basename(self.checkpoint_basename)
            self._locked = True
        try:
            self._resume_or_init(n)
        except BaseException:
            self._locked = False
            ckpt.release_basename(self.checkpoint_basename)
            raise

    def _resume_or_init(self, n: int) -> None:
        self._close_log()  # a restarted node reopens the (possibly truncated) log
        ckpt.remove_partial_checkpoints(self.checkpoint_basename)
        latest = ckpt.latest_checkpoint(self.checkpoint_basename, allow_pickle=self.allow_pickle)
        self.state, self._resume = None, latest
        if latest is None:
            logger.info("Train: starting from scratch (no checkpoint %s_checkpoint_*)", self.checkpoint_basename)
            self.iteration = 0
        else:
            logger.info("Train: resuming from %s (iteration %d)", latest.path, latest.iteration)
            self.iteration = latest.iteration
        self._last_saved = self.iteration
        self._truncate_log(self.iteration)
        if n > 1:
            self._step = jax.pmap(
                self.model.train_step, axis_name=PMAP_AXIS, static_broadcasted_argnums=(2,), donate_argnums=(0,)
            )
        else:
            self._step = jax.jit(self.model.train_step, static_argnums=(2,), donate_argnums=(0,))

    def stop(self) -> None:
        """Checkpoint the last iteration if it has not been saved yet, close the log, release the basename."""
        try:
            if self.state is not None and self.iteration != getattr(self, "_last_saved", self.iteration):
                self.save()
        finally:
            try:
                self._close_log()
            finally:
                if self._locked:
                    self._locked = False
                    self._step = None
                    ckpt.release_basename(self.checkpoint_basename)

    def _place_state(self, state: Any) -> Any:
        if self._n > 1:  # one copy per device along a leading axis, as jax.pmap takes it
            return jax.tree.map(lambda x: np.stack([np.asarray(x)] * self._n), jax.device_get(state))
        return jax.device_put(state)

    def _single_state(self) -> Any:
        return jax.tree.map(lambda x: x[0], self.state) if self._n > 1 else self.state

    def save(self) -> str:
        """Checkpoint the current state and iteration now (atomically), after syncing the log to disk."""
        self._sync_log()
        path = ckpt.save_checkpoint(
            self.checkpoint_basename, self.iteration, self._single_state(), {"model": type(self.model).__name__}
        )
        self._last_saved = self.iteration
        if self.keep_n_checkpoints:
            ckpt.prune_checkpoints(self.checkpoint_basename, self.keep_n_checkpoints)
        return path

    def _collect_inputs(self, batch: Batch) -> dict[str, Any]:
        arrays = {}
        for name, key in self.inputs.items():
            if isinstance(key, ArrayKey):
                if key not in batch:
                    raise RequestError(f"Train: batch lacks input {key} (model input {name!r}); it has {sorted(batch)}")
                arrays[name] = batch[key].data
            elif isinstance(key, np.ndarray):
                arrays[name] = key
            else:
                raise TypeError(f"Train input {name!r} must be an ArrayKey or ndarray, got {type(key).__name__}")
        return arrays

    def _split(self, arrays: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, a in arrays.items():
            a = np.asarray(a)
            if a.ndim == 0 or a.shape[0] % self._n:
                raise SpecError(
                    f"n_devices={self._n}: input {name!r} of shape {a.shape} needs a leading batch axis divisible "
                    f"by {self._n} (use gp.Stack)"
                )
            out[name] = a.reshape(self._n, a.shape[0] // self._n, *a.shape[1:])
        return out

    def _unsplit(self, tree: Any) -> Any:
        return jax.tree.map(lambda x: x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]), tree)

    def train_step(self, batch: Batch, request: BatchRequest) -> None:
        """Run one step on ``batch``; set ``batch.loss``, ``batch.iteration`` and the requested outputs.

        The step, its log row and its checkpoint happen together: Ctrl-C is delivered after them.
        """
        if self._step is None:
            self.start()
        with deferred_interrupt():
            self._train_step(batch, request)

    def _train_step(self, batch: Batch, request: BatchRequest) -> None:
        start = time.perf_counter()
        inputs = self._collect_inputs(batch)
        if self._n > 1:  # (n_devices, batch / n_devices, ...): jax.pmap shards the leading axis
            inputs = self._split(inputs)
        else:
            inputs = jax.device_put(inputs)
        if self.state is None:
            seed = request.random_seed if request.random_seed is not None else 0
            rng = jax.random.PRNGKey(seed % (2**32))
            first = jax.tree.map(lambda x: x[0], inputs) if self._n > 1 else inputs
            if self._resume is not None:  # the checkpoint's arrays in the structure the model's state has
                template = jax.eval_shape(self.model.initialize, rng, first)
                state = ckpt.restore_like(template, self._resume.state, f"checkpoint {self._resume.path!r}")
                self._resume = None
            else:
                state = self.model.initialize(rng, first)
            self.state = self._place_state(state)
        if self._step is None:
            raise RuntimeError("Train: train_step before start() (the pipeline is not set up)")
        result = self._step(self.state, inputs, self._n > 1)
        if len(result) == 4:
            self.state, outputs, loss, grads = result
        else:
            (self.state, outputs, loss), grads = result, {}
        if self._n > 1:
            outputs, grads = self._unsplit(outputs), self._unsplit(grads)
            loss = jax.tree.map(lambda x: x[0], loss)
        self.iteration += 1
        batch.iteration = self.iteration
        # a protocol model may return several named losses: the batch's loss is their sum, as in gunpowder
        # 1.5 (Snapshot, the log and run_training read one number); the parts go to the log line
        parts = {k: float(v) for k, v in loss.items()} if isinstance(loss, Mapping) else None
        batch.loss = sum(parts.values()) if parts is not None else float(loss)
        elapsed = time.perf_counter() - start
        logger.info("Train: iteration=%d loss=%s%s time=%.3f", batch.iteration, batch.loss,
                    f" {parts}" if parts is not None else "", elapsed)
        if self.iteration % self.log_every == 0:
            self._log_row(self.iteration, batch.loss, elapsed)

        centre = self._input_roi(batch)
        for source, mapping, what in ((outputs, self.outputs, "output"), (grads, self.gradients, "gradient")):
            for name, key in mapping.items():
                if key not in request:
                    continue
                if name not in source:
                    raise KeyError(
                        f"Train: the model returned no {what} {name!r} for {key}; it returned {sorted(source)}"
                    )
                data = np.asarray(source[name])
                batch[key] = place_output(key, data, self.spec[key], request[key].roi, centre)

        if self.save_every and self.iteration % self.save_every == 0:
            self.save()
        if self.validation_fn is not None and self.validation_every and self.iteration % self.validation_every == 0:
            value = self.validation_fn(self.model, self._single_state())
            logger.info("Train: iteration=%d validation=%s", self.iteration, value)

    def _input_roi(self, batch: Batch) -> Roi | None:
        for key in self.inputs.values():
            if isinstance(key, ArrayKey) and key in batch and batch[key].spec.roi is not None:
                return batch[key].spec.roi
        return None

    # --- log -------------------------------------------------------------------------------------
    @property
    def log_path(self) -> str:
        """The CSV file of iteration, loss, iteration time (s) and wall-clock timestamp."""
        if self.log_dir is not None:
            return os.path.join(self.log_dir, "train_log.csv")
        return ckpt.log_name(self.checkpoint_basename)

    def _truncate_log(self, iteration: int) -> None:
        """Drop rows after ``iteration`` (from a run that crashed after its last checkpoint)."""
        path = self.log_path
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            rows = [row for row in csv.DictReader(f) if row.get("iteration", "").isdigit()]
        keep = [row for row in rows if int(row["iteration"]) <= iteration]
        if len(keep) == len(rows):
            return
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(keep)
        os.replace(tmp, path)
        logger.info("Train: dropped %d log rows after iteration %d from %s", len(rows) - len(keep), iteration, path)

    def _log_row(self, iteration: int, loss: float, elapsed: float) -> None:
        """Append one row; flushed to the operating system at once (readable while training runs)."""
        if self._log_file is None:
            path = self.log_path
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            new = not os.path.exists(path) or os.path.getsize(path) == 0
            self._log_file = open(path, "a", newline="")
            if new:
                csv.writer(self._log_file).writerow(LOG_FIELDS)
        csv.writer(self._log_file).writerow([iteration, f"{loss:.8g}", f"{elapsed:.4f}", f"{time.time():.3f}"])
        self._log_file.flush()

    def _sync_log(self) -> None:
        """Make the log's rows durable (done before each checkpoint is written)."""
        if self._log_file is not None:
            self._log_file.flush()
            os.fsync(self._log_file.fileno())

    def _close_log(self) -> None:
        if self._log_file is not None:
            try:
                self._sync_log()
            finally:
                self._log_file.close()
                self._log_file = None
