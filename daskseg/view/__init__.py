"""``daskseg view``: what a job wrote (raw, affinities, segmentation, ground truth), aligned in
world units, in neuroglancer (served on 127.0.0.1) or napari.

``layers.py`` turns paths into ``LayerSpec``s (kind, voxel size, offset) from daskseg's io;
``ng.py`` makes neuroglancer layers and the viewer state of them; ``napari_viewer.py`` the napari
layers. Neither viewer package is imported by ``import daskseg``.
"""

from .layers import LayerSpec, layer_specs

__all__ = ["LayerSpec", "layer_specs"]
