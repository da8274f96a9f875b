"""The data presets: how hard a synthetic sample is (``easy``, ``cremi-like``, ``hard``).

``easy`` is daskseg's first generator, unchanged: processes of one broad calibre (median radius
90 nm), membranes equally dark everywhere; a threshold on smoothed raw segments it fairly well.
``cremi-like`` imitates CREMI's neuropil at 4 nm: mostly thin axons (50-200 nm across) with
varicosities, a few thick dendrites with thin spines, membranes of varying darkness and thickness
(some contacts nearly invisible), mitochondria with cristae and vesicle clouds, section-to-section
contrast, and a few low-contrast, missing and shifted sections. ``hard`` has more of all of that.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import SynthError


@dataclass(frozen=True)
class SynthParams:
    """Everything that sets a sample's look, apart from its shape, voxel size and seed.

    The first block is shared by all presets (the ``easy`` generator's arguments); the rest is
    read only by the EM-like presets (``style='em'``). Lengths are in nm, densities per µm³.
    """

    style: str = "easy"
    density: float = 9.0
    mean_length: float = 4000.0
    radius: float = 90.0
    oblique_fraction: float = 0.25
    branch_rate: float = 0.4
    core_fraction: float = 0.6
    mitochondria: float = 10.0
    noise: float = 0.05
    blur: tuple[float, float, float] = (0.4, 1.2, 1.2)
    # --- style 'em' only: labels
    radius_spread: float = 0.4
    varicosity: float = 0.3
    dendrite_density: float = 0.0
    dendrite_radius: float = 300.0
    spine_rate: float = 1.5
    # --- style 'em' only: raw
    membrane_darkness: tuple[float, float] = (0.55, 0.95)
    faint_fraction: float = 0.08
    thick_fraction: float = 0.4
    membrane_variation: float = 0.3
    vesicle_clouds: float = 0.0
    gain_sd: float = 0.08
    offset_sd: float = 0.03
    shading: float = 0.06
    low_contrast: float = 0.03
    missing: float = 0.01
    shifted: float = 0.02
    max_shift: int = 12


DATA_PRESETS: dict[str, SynthParams] = {
    "easy": SynthParams(),
    "cremi-like": SynthParams(
        style="em",
        density=22.0,
        radius=42.0,
        radius_spread=0.4,
        oblique_fraction=0.2,
        branch_rate=0.15,
        core_fraction=0.85,
        dendrite_density=0.12,
        dendrite_radius=320.0,
        mitochondria=40.0,
        vesicle_clouds=15.0,
        noise=0.07,
        blur=(0.4, 1.0, 1.0),
        faint_fraction=0.12,
        membrane_variation=0.35,
    ),
    "hard": SynthParams(
        style="em",
        density=28.0,
        radius=36.0,
        radius_spread=0.45,
        oblique_fraction=0.3,
        branch_rate=0.25,
        core_fraction=0.85,
        dendrite_density=0.12,
        dendrite_radius=300.0,
        mitochondria=60.0,
        vesicle_clouds=25.0,
        noise=0.1,
        blur=(0.5, 1.3, 1.3),
        membrane_darkness=(0.4, 0.9),
        faint_fraction=0.18,
        thick_fraction=0.3,
        membrane_variation=0.45,
        gain_sd=0.12,
        offset_sd=0.05,
        shading=0.1,
        low_contrast=0.06,
        missing=0.03,
        shifted=0.05,
        max_shift=20,
    ),
}
"""The named presets; ``daskseg synth --preset`` picks one (default ``cremi-like``)."""


def preset_params(preset: str | SynthParams, **overrides: object) -> SynthParams:
    """The parameters of ``preset`` (a name or :class:`SynthParams`) with ``overrides`` (None: keep).

    Raises :class:`SynthError` for an unknown name or parameter.
    """
    if isinstance(preset, SynthParams):
        params = preset
    elif preset in DATA_PRESETS:
        params = DATA_PRESETS[preset]
    else:
        raise SynthError(f"unknown data preset {preset!r}; presets are {', '.join(DATA_PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    fields = {f.name for f in dataclasses.fields(SynthParams)} - {"style"}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise SynthError(f"unknown synthetic sample parameter(s) {unknown}; known are {sorted(fields)}")
    if "blur" in given:
        given["blur"] = tuple(float(b) for b in given["blur"])  # type: ignore[attr-defined]
    return dataclasses.replace(params, **given)  # type: ignore[arg-type]
