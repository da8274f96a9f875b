"""``DefectAugment``: missing, low-contrast, artifact-covered and folded sections."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from scipy import ndimage

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..geometry import Coordinate
from ..pipeline import BatchFilter, BatchProvider, Pipeline

logger = logging.getLogger(__name__)


#: One folded section: source coordinates (2, h, w) of the grown section and its blacked-out mask.
_Fold = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass
class _DefectPlan:
    """What ``DefectAugment.prepare`` drew for one request: the defect of each affected section, the
    folds, and the stream the artifact requests draw their seeds from."""

    rng: np.random.Generator
    sections: dict[int, str] = dataclasses.field(default_factory=dict)
    deformations: dict[int, _Fold] = dataclasses.field(default_factory=dict)


class DefectAugment(BatchFilter):
    """Augment intensity arrays section-wise with artifacts like missing sections, low-contrast
    sections, by blending in artifacts drawn from a separate source, or by deforming a section.

    Each section along ``axis`` independently gets at most one defect; the probabilities are
    cumulative (a section is missing with ``prob_missing``, else low-contrast with
    ``prob_low_contrast``, ...). Only ``intensities`` is changed.

    Args:

        intensities (:class:`ArrayKey`):

            The key of the array of intensities to modify.

        prob_missing (``float``):
        prob_low_contrast (``float``):
        prob_artifact (``float``):
        prob_deform (``float``):

            Probabilities of having a missing section, low-contrast section, an artifact (see
            param ``artifact_source``) or a deformed slice. The sum should not exceed 1. Values in
            missing sections will be set to 0.

        contrast_scale (``float``, optional):

            By how much to scale the intensities for a low-contrast section (around the section's
            mean), used if ``prob_low_contrast`` > 0.

        artifact_source (:class:`BatchProvider` or pipeline, optional):

            A batch provider that delivers intensities (via :class:`ArrayKey` ``artifacts``) and an
            alpha mask (via :class:`ArrayKey` ``artifacts_mask``, float32 in [0, 1]), used if
            ``prob_artifact`` > 0. Requests to it are centred at the origin: end it with a
            :class:`RandomLocation`. This node sets it up and tears it down.

        artifacts (:class:`ArrayKey`, optional):

            The key to query ``artifact_source`` for to get the intensities of the artifacts.

        artifacts_mask (:class:`ArrayKey`, optional):

            The key to query ``artifact_source`` for to get the alpha mask of the artifacts to blend
            them with ``intensities``.

        deformation_strength (``int``, optional):

            Strength of the slice deformation in voxels, used if ``prob_deform`` > 0. The
            deformation models a fold by shifting the section contents towards a randomly oriented
            line through the section (cubic interpolation for interpolatable intensities); the line,
            dilated by 10 voxels, is drawn with a value of 0. Upstream, the request is grown by this
            many voxels in the section plane when a section is deformed.

        axis (``int``, optional):

            Along which axis sections are cut.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0 (always apply).
    """

    thread_safe = True

    def __init__(
        self,
        intensities: ArrayKey,
        prob_missing: float = 0.05,
        prob_low_contrast: float = 0.05,
        prob_artifact: float = 0.0,
        prob_deform: float = 0.0,
        contrast_scale: float = 0.1,
        artifact_source: BatchProvider | Pipeline | None = None,
        artifacts: ArrayKey | None = None,
        artifacts_mask: ArrayKey | None = None,
        deformation_strength: int = 20,
        axis: int = 0,
        p: float = 1.0,
    ):
        probs = (prob_missing, prob_low_contrast, prob_artifact, prob_deform)
        if any(q < 0 for q in probs) or sum(probs) > 1 + 1e-12:
            raise ValueError(f"DefectAugment: probabilities must be >= 0 and sum to at most 1, got {probs}")
        if prob_artifact > 0 and (artifact_source is None or artifacts is None or artifacts_mask is None):
            raise ValueError("DefectAugment: prob_artifact > 0 needs artifact_source, artifacts and artifacts_mask")
        if deformation_strength < 0:
            raise ValueError(f"DefectAugment: deformation_strength must be >= 0, got {deformation_strength}")
        self.intensities = intensities
        self.prob_missing = prob_missing
        self.prob_low_contrast = prob_low_contrast
        self.prob_artifact = prob_artifact
        self.prob_deform = prob_deform
        self.contrast_scale = contrast_scale
        self.artifact_source = artifact_source
        self.artifacts = artifacts
        self.artifacts_mask = artifacts_mask
        self.deformation_strength = int(deformation_strength)
        self.axis = axis
        self.p = p
        self._artifact_pipeline: Pipeline | None = None

    def setup(self) -> None:
        if self.intensities not in self.spec:
            raise SpecError(f"DefectAugment: {self.intensities} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.intensities]
        if spec.roi is not None and self.axis not in range(spec.roi.dims):
            raise SpecError(f"DefectAugment: axis {self.axis} is not an axis of {self.intensities} (ROI {spec.roi})")
        self.updates(self.intensities, spec.copy())
        self.enable_autoskip()
        if self.artifact_source is not None:
            self._artifact_pipeline = Pipeline(self.artifact_source)
            self._artifact_pipeline.setup()

    def teardown(self) -> None:
        if self._artifact_pipeline is not None:
            self._artifact_pipeline.teardown()
            self._artifact_pipeline = None

    def prepare(self, request: BatchRequest) -> BatchRequest:
        rng = self.random_generator(request)
        spec = request[self.intensities].copy()
        deps = BatchRequest()
        deps[self.intensities] = spec
        if self.p < 1 and rng.random() >= self.p:
            return deps
        vs = self.spec[self.intensities].checked_voxel_size(f"DefectAugment's {self.intensities}")
        roi = spec.checked_roi(f"the request for DefectAugment's {self.intensities}")
        shape = roi.shape / vs
        thresholds = np.cumsum([self.prob_missing, self.prob_low_contrast, self.prob_artifact, self.prob_deform])
        kinds = ("zero_out", "lower_contrast", "artifact", "deformed_slice")
        plan = _DefectPlan(rng)
        for c in range(shape[self.axis]):
            r = rng.random()
            for kind, threshold in zip(kinds, thresholds):
                if r < threshold:
                    plan.sections[c] = kind
                    break
        if "deformed_slice" in plan.sections.values():
            section_shape = tuple(s for d, s in enumerate(shape) if d != self.axis)
            for c, kind in plan.sections.items():
                if kind == "deformed_slice":
                    plan.deformations[c] = self._deformation(section_shape, rng)
            grow = Coordinate(0 if d == self.axis else vs[d] * self.deformation_strength for d in range(roi.dims))
            spec.roi = roi.grow(grow, grow)
            request[self.intensities] = spec
            deps[self.intensities] = spec
        logger.debug("DefectAugment: %s", plan.sections)
        request.plan = plan
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        plan = request.plan
        if not isinstance(plan, _DefectPlan) or not plan.sections:
            return batch
        array = batch[self.intensities]
        data = array.data if array.data.flags.writeable else array.data.copy()
        dims = array.spec.checked_roi(f"DefectAugment's {self.intensities}").dims
        axis = data.ndim - dims + self.axis
        vs = array.spec.checked_voxel_size(f"DefectAugment's {self.intensities}")
        strength = self.deformation_strength if plan.deformations else 0
        for c, kind in sorted(plan.sections.items()):
            section = np.take(data, c, axis=axis)  # a copy
            if kind == "zero_out":
                section[...] = 0
            elif kind == "lower_contrast":
                mean = section.mean(dtype=np.float64)
                section = _cast((section - mean) * self.contrast_scale + mean, data.dtype)
            elif kind == "artifact":
                section = _cast(self._blend_artifact(section, dims, vs, plan.rng), data.dtype)
            elif kind == "deformed_slice":
                section = _cast(self._deform(section, plan.deformations[c]), data.dtype)
            index: list[slice | int] = [slice(None)] * data.ndim
            index[axis] = c
            data[tuple(index)] = section
        if strength:
            index = [slice(None)] * data.ndim
            for d in range(dims):
                if d != self.axis:
                    index[data.ndim - dims + d] = slice(strength, data.shape[data.ndim - dims + d] - strength)
            data = data[tuple(index)]
        spec = array.spec.copy()
        spec.roi = request[self.intensities].roi
        batch[self.intensities] = Array(data, spec, array.attrs)
        return batch

    # --- artifacts ---------------------------------------------------------------------------
    def _blend_artifact(
        self, section: np.ndarray, dims: int, voxel_size: Coordinate, rng: np.random.Generator
    ) -> np.ndarray:
        pipeline, artifacts, mask = self._artifact_pipeline, self.artifacts, self.artifacts_mask
        if pipeline is None or artifacts is None or mask is None:
            raise RuntimeError("DefectAugment: artifacts need artifact_source, artifacts and artifacts_mask (set up)")
        mask_vs = pipeline.spec[mask].voxel_size
        if mask_vs != voxel_size:
            raise SpecError(
                f"DefectAugment: can only alpha blend {self.intensities} with {self.artifacts_mask} if both have "
                f"the same voxel size, got {voxel_size} and {mask_vs}"
            )
        spatial = section.shape[section.ndim - (dims - 1):]
        shape = list(spatial)
        shape.insert(self.axis, 1)
        size = Coordinate(shape) * voxel_size
        req = BatchRequest(random_seed=int(rng.integers(2**32)))
        req.add(artifacts, size, voxel_size=voxel_size)
        req.add(mask, size, voxel_size=voxel_size)
        artifact_batch = pipeline.request_batch(req)
        alpha = np.squeeze(artifact_batch[mask].data, axis=-dims + self.axis)
        raw = np.squeeze(artifact_batch[artifacts].data, axis=-dims + self.axis)
        if alpha.dtype != np.float32 or (alpha.size and (alpha.min() < 0 or alpha.max() > 1)):
            raise SpecError(
                f"DefectAugment: {self.artifacts_mask} must be float32 in [0, 1], got {alpha.dtype} in "
                f"[{alpha.min()}, {alpha.max()}]"
            )
        return section * (1.0 - alpha) + raw * alpha

    # --- folds -------------------------------------------------------------------------------
    def _deformation(self, section_shape: tuple[int, ...], rng: np.random.Generator) -> _Fold:
        """Source coordinates and blacked-out mask of one folded section (grown by the strength)."""
        if len(section_shape) != 2:
            raise SpecError(f"DefectAugment: deformed sections need 3D intensities, got sections of shape {section_shape}")
        s = self.deformation_strength
        h, w = section_shape[0] + 2 * s, section_shape[1] + 2 * s
        if h < 4 or w < 4:
            raise SpecError(f"DefectAugment: sections of shape {section_shape} are too small to deform")
        if rng.random() < 0.5:  # a line from the first to the last row
            r0, c0, r1, c1 = 0, int(rng.integers(1, w - 2)), h - 1, int(rng.integers(1, w - 2))
        else:  # from the first to the last column
            r0, c0, r1, c1 = int(rng.integers(1, h - 2)), 0, int(rng.integers(1, h - 2)), w - 1
        line = np.zeros((h, w), dtype=bool)
        rr, cc = _line(r0, c0, r1, c1)
        line[rr, cc] = True
        direction = np.array([r1 - r0, c1 - c0], dtype=np.float64)
        direction /= np.linalg.norm(direction)
        normal = np.array([-direction[1], direction[0]])
        components, n = ndimage.label(~line)
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        flow = np.zeros((2, h, w))
        for label in range(1, n + 1):
            inside = components == label
            # move the content towards the line: read from further away from it
            side = np.sign(((rows[inside] - r0) * normal[0] + (cols[inside] - c0) * normal[1]).mean())
            flow[0][inside] = side * s * normal[0]
            flow[1][inside] = side * s * normal[1]
        coordinates = np.stack([rows + flow[0], cols + flow[1]])
        mask = ndimage.binary_dilation(line, iterations=10)
        return coordinates, mask

    def _deform(self, section: np.ndarray, deformation: _Fold) -> np.ndarray:
        coordinates, mask = deformation
        order = 3 if self.spec[self.intensities].interpolatable else 0
        lo, hi = min(float(section.min()), 0.0), float(section.max())
        flat = section.reshape((-1,) + section.shape[-2:]).astype(np.float64)
        out = np.stack([ndimage.map_coordinates(ch, coordinates, order=order, mode="constant") for ch in flat])
        np.clip(out, lo, hi, out=out)
        out[:, mask] = 0
        return out.reshape(section.shape)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def _line(r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of the 8-connected line from ``(r0, c0)`` to ``(r1, c1)`` (both included)."""
    steps = max(abs(r1 - r0), abs(c1 - c0))
    t = np.arange(steps + 1) / max(steps, 1)
    rr = np.rint(r0 + t * (r1 - r0)).astype(int)
    cc = np.rint(c0 + t * (c1 - c0)).astype(int)
    return rr, cc
