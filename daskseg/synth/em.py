"""The EM-like presets' raw: cytoplasm, organelles, membranes, then the microscope.

Each object gets its own brightness and a grainy texture; mitochondria and vesicle clouds darken
it inside (their membranes look like boundaries, which is the point); membranes are inked with
per-contact darkness and thickness (:mod:`.membranes`), a label change across sections shows as a
fainter smear; then :func:`.imaging.image` blurs, varies contrast per section, adds noise and the
bad sections.
"""

from __future__ import annotations

import numpy as np

from .cytoplasm import cytoplasm
from .imaging import image
from .membranes import boundary_mask, membrane_ink
from .organelles import mitochondria, vesicle_clouds
from .presets import SynthParams
from .shapes import Polylines

MEMBRANE_LEVEL = 0.16
"""The intensity of a fully inked membrane, before imaging."""


def em_raw(
    rng: np.random.Generator,
    labels: np.ndarray,
    polylines: Polylines,
    voxel_size: np.ndarray,
    p: SynthParams,
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """EM-like uint8 raw for ``labels`` under parameters ``p``; also the bad sections by kind."""
    raw = cytoplasm(rng, labels, (0.58, 0.82), (0.5, 1.5, 1.5), 0.05)
    mitochondria(rng, raw, labels, polylines, voxel_size, p.mitochondria)
    if p.vesicle_clouds > 0:
        vesicle_clouds(rng, raw, labels, polylines, voxel_size, p.vesicle_clouds)
    raw[boundary_mask(labels, axes=(0,))] *= np.float32(0.8)
    ink = membrane_ink(
        rng, labels, p.membrane_darkness, p.faint_fraction, (0.03, 0.15), p.thick_fraction, p.membrane_variation
    )
    raw *= 1 - ink
    raw += np.float32(MEMBRANE_LEVEL) * ink
    del ink
    return image(
        rng, raw, p.blur, p.noise, p.gain_sd, p.offset_sd, p.shading, p.low_contrast, p.missing, p.shifted,
        p.max_shift,
    )
