"""napari layers of ``LayerSpec``s (``daskseg view --napari``).

napari draws pixel ``i`` centred on ``translate + i * scale``, so a voxel that daskseg places from
``offset + i * voxel_size`` to ``offset + (i + 1) * voxel_size`` gets ``translate = offset +
voxel_size / 2``: layers of different voxel sizes then overlap where they lie in the world. Labels
become Labels layers, affinities one image layer per channel (``channel_axis``), raw an image.
Data are read lazily (dask arrays over the datasets), chunk by chunk as napari asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ViewerError
from .layers import CHANNELS, LABELS, LayerSpec


def lazy_array(spec: LayerSpec) -> Any:
    """A dask array over the dataset, chunked as it is stored."""
    import dask.array as da

    from .ng import VoxelArray

    ds = spec.dataset
    return da.from_array(VoxelArray(ds), chunks=ds.chunk_shape, asarray=True, fancy=False)


def napari_layer(spec: LayerSpec) -> tuple[str, dict[str, Any]]:
    """``(method, keyword arguments)`` of the ``napari.Viewer.add_*`` call for one layer (no data)."""
    channels = spec.dataset.num_channel_dims
    scale = [float(v) for v in spec.voxel_size]
    translate = [float(o) + float(v) / 2 for o, v in zip(spec.offset, spec.voxel_size)]
    kwargs: dict[str, Any] = {"name": spec.name, "scale": scale, "translate": translate}
    if spec.kind == LABELS:
        return "add_labels", kwargs
    kwargs["contrast_limits"] = list(spec.value_range)
    if spec.kind == CHANNELS and channels == 1:
        kwargs["channel_axis"] = 0
        kwargs["name"] = [f"{spec.name}[{c}]" for c in range(spec.dataset.channel_shape[0])]
        kwargs["colormap"] = (["red", "green", "blue"] * spec.dataset.channel_shape[0])[: spec.dataset.channel_shape[0]]
        kwargs["blending"] = "additive"
    return "add_image", kwargs


def open_napari(specs: Sequence[LayerSpec], run: bool = True) -> Any:
    """Open the layers in a napari viewer; ``run``: block in napari's event loop until it is closed."""
    try:
        import napari
    except ImportError:
        raise ViewerError(
            "napari is not installed: pip install 'napari[all]', or leave out --napari to use neuroglancer"
        ) from None
    viewer = napari.Viewer(title="daskseg view")
    for spec in specs:
        method, kwargs = napari_layer(spec)
        getattr(viewer, method)(lazy_array(spec), **kwargs)
    if run:
        napari.run()
    return viewer
