"""What every Zarr dataset daskseg writes must satisfy, checked as the tools users have read it.

``check_output(container, name, ...)`` asserts that ``name`` is a valid OME-Zarr 0.5 image (or
image-label) group for ome-zarr-models, that funlib.persistence's ``open_ds`` reads each level with
the right voxel size, offset, ROI and axis names, that the metadata neuroglancer reads from a level
array gives nanometre voxel sizes and named dimensions with the channel axis as a channel (``^``),
and that daskseg opens the group's name as its level 0.

Import from a test module (``from ome_checks import check_output``).
"""

from __future__ import annotations

import re

import zarr

from daskseg.io import open_dataset
from daskseg.io.ome import read_image

# neuroglancer's valid dimension names (coordinate_transform.ts): a trailing ' is a local
# dimension, a trailing ^ a channel dimension
NEUROGLANCER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z_0-9]*['^]?$")
NEUROGLANCER_UNIT = re.compile(r"^([0-9]+(\.[0-9]*)?)\s*nm$")


def validate_ome(container, name: str, label: bool = False):
    """The ome-zarr-models model of the image (or image-label) group ``name``; raises if invalid."""
    from ome_zarr_models.v05.image import Image
    from ome_zarr_models.v05.image_label import ImageLabel

    group = zarr.open_group(f"{container}/{name}", mode="r")
    return (ImageLabel if label else Image).from_zarr(group)


def check_output(container, name: str, voxel_size, offset, *, channels: int = 0, label: bool = False,
                 shape=None) -> None:
    """Assert that ``container/name`` is an OME-Zarr image every tool reads in world units.

    Args:
        voxel_size, offset (tuple of int): the expected world units of level 0.
        channels (int): how many leading channel axes the data has.
        label (bool): whether it must be an ``image-label``.
        shape (tuple of int, optional): the expected spatial shape of level 0 (voxels).
    """
    import funlib.persistence as fp

    container = str(container)
    model = validate_ome(container, name, label=label)
    ome = model.attributes.ome
    assert len(ome.multiscales) == 1
    ms = ome.multiscales[0]
    image = read_image(container, name)
    assert image is not None and image.is_label == label
    spatial = len(voxel_size)
    assert [a.type for a in ms.axes][channels:] == ["space"] * spatial
    assert all(a.unit == "nanometer" for a in ms.axes[channels:])
    for dataset, level in zip(ms.datasets, image.levels, strict=True):
        scale, translation = dataset.coordinateTransformations
        assert list(scale.scale)[channels:] == [float(v) for v in level.voxel_size]
        assert list(translation.translation)[channels:] == [float(o) for o in level.offset]
        array = fp.open_ds(f"{container}/{name}/{dataset.path}")
        assert tuple(array.voxel_size) == tuple(level.voxel_size)
        assert tuple(array.offset) == tuple(level.offset)
        assert array.channel_dims == channels
        assert tuple(array.axis_names) == tuple(a.name for a in ms.axes)
        # neuroglancer pointed at the level array: dimension_names + dimension_units
        z = zarr.open_array(f"{container}/{name}/{dataset.path}", mode="r")
        names = z.metadata.dimension_names
        assert names == tuple(a.name for a in ms.axes)
        assert all(NEUROGLANCER_NAME.match(n) for n in names), names
        assert all(n.endswith("^") for n in names[:channels]) and not any(n.endswith("^") for n in names[channels:])
        units = dict(z.attrs)["dimension_units"]
        assert units[:channels] == [None] * channels
        got = [float(NEUROGLANCER_UNIT.match(u).group(1)) for u in units[channels:]]
        assert got == [float(v) for v in level.voxel_size]
    # neuroglancer pointed at the group: OME axes typed space with nm units, valid names once a
    # channel-typed axis would get its "'" (none is typed channel, so the names stay as they are)
    assert all(NEUROGLANCER_NAME.match(a.name) for a in ms.axes)
    level0 = image.levels[0]
    assert tuple(level0.voxel_size) == tuple(voxel_size) and tuple(level0.offset) == tuple(offset)
    ds = open_dataset(container, name)
    assert ds.array_name == f"{name}/{level0.path}"
    assert tuple(ds.voxel_size) == tuple(voxel_size) and tuple(ds.roi.offset) == tuple(offset)
    assert ds.num_channel_dims == channels
    if shape is not None:
        assert tuple(ds.roi.shape / ds.voxel_size) == tuple(shape)
        array = fp.open_ds(f"{container}/{name}/{level0.path}")
        assert tuple(array.roi.shape) == tuple(ds.roi.shape) and tuple(array.roi.offset) == tuple(offset)
