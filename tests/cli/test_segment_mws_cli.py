"""`daskseg segment --method mws` on the command line: a hand-checkable pair of objects whose
leaky boundary only the long-range affinities close; the neighbourhood from the affinities'
attributes or --neighborhood; --mws-bias takes effect; a channel count that does not match the
neighbourhood is one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from dask_fixtures import local_client

from daskseg.cli import main
from daskseg.io import open_dataset, set_attrs, write_array

VS = (40, 4, 4)
NEIGHBORHOOD = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, -4]]


@pytest.fixture(scope="module")
def scheduler():
    with local_client(n_workers=1) as c:
        yield c.scheduler.address


@pytest.fixture
def two_objects(tmp_path, monkeypatch):
    """Objects x < 8 and x >= 8 of a (2, 8, 16) volume: nearest affinities 0.9, 0.8 across the
    boundary (a leak); the long-range channel (x - 4) 1 inside an object, 0 across."""
    labels = np.where(np.arange(16) < 8, 1, 2)[None, None, :].repeat(2, 0).repeat(8, 1)
    affs = np.full((4, 2, 8, 16), 0.9, np.float32)
    affs[2, :, :, 8] = 0.8
    affs[3, :, :, 4:] = (labels[:, :, 4:] == labels[:, :, :-4]).astype(np.float32)
    write_array(tmp_path / "pred.zarr", "volumes/pred_affs", affs, VS)
    monkeypatch.chdir(tmp_path)
    return tmp_path, labels


def segment(scheduler, *extra) -> tuple[int, str]:
    # faces at x = 6 and 12 cut both objects; the boundary (x = 8) lies inside the middle block
    args = ["segment", "--affs", "pred.zarr/volumes/pred_affs", "--out", "seg.zarr/volumes/segmentation",
            "--method", "mws", "--block-shape", "2,8,6", "--scheduler", scheduler, "--overwrite", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_long_range_edges_keep_the_objects_apart(two_objects, scheduler):
    tmp_path, labels = two_objects
    code, output = segment(scheduler, "--neighborhood", "[[-1,0,0],[0,-1,0],[0,0,-1],[0,0,-4]]")
    assert code == 0, output
    seg = open_dataset(tmp_path / "seg.zarr", "volumes/segmentation").read()
    assert len(np.unique(seg[labels == 1])) == 1 and len(np.unique(seg[labels == 2])) == 1
    assert seg[0, 0, 0] != seg[0, 0, 15]


def test_neighbourhood_from_the_attributes_and_bias(two_objects, scheduler):
    tmp_path, labels = two_objects
    set_attrs(tmp_path / "pred.zarr", "volumes/pred_affs", {"daskseg": {"affinity_neighborhood": NEIGHBORHOOD}})
    code, output = segment(scheduler)
    assert code == 0, output
    seg = open_dataset(tmp_path / "seg.zarr", "volumes/segmentation").read()
    assert len(np.unique(seg)) == 2 and seg[0, 0, 0] != seg[0, 0, 15]
    # every nearest-neighbour affinity (<= 0.9) below a bias of 0.95 repels: nothing joins inside a
    # block, and min_size (10 voxels) then puts the lone voxels back together only where it can
    code, output = segment(scheduler, "--mws-bias", "0.95")
    assert code == 0, output
    assert len(np.unique(open_dataset(tmp_path / "seg.zarr", "volumes/segmentation").read())) > 2


def test_channels_that_do_not_fit_the_neighbourhood_are_one_error(two_objects, scheduler):
    tmp_path, _ = two_objects
    code, output = segment(scheduler)  # no attribute, no --neighborhood: 3 nearest-neighbour channels expected
    assert code != 0 and "needs exactly 3 channels" in output and "Traceback" not in output
    code, output = segment(scheduler, "--neighborhood", "[[-1,0,0],[0,-1,0]]")
    assert code != 0 and "needs exactly 2 channels" in output
    code, output = segment(scheduler, "--neighborhood", "[[-1,0,0],'x']")
    assert code != 0 and "a JSON list of offsets" in output
    assert not (tmp_path / "seg.zarr").exists()


def test_face_edges_decide_across_a_face_on_the_leaky_boundary(two_objects, scheduler):
    """Blocks of 8 along x put a face on the boundary (x = 8): each block holds one object whole.
    Across the face the nearest-neighbour contact (0.8) says merge; the long-range edges (0) say no."""
    tmp_path, labels = two_objects
    set_attrs(tmp_path / "pred.zarr", "volumes/pred_affs", {"daskseg": {"affinity_neighborhood": NEIGHBORHOOD}})
    found = {}
    for face_edges in ("all", "nearest"):
        code, output = segment(scheduler, "--block-shape", "2,8,8", "--mws-face-edges", face_edges)
        assert code == 0, output
        found[face_edges] = len(np.unique(open_dataset(tmp_path / "seg.zarr", "volumes/segmentation").read()))
    assert found == {"all": 2, "nearest": 1}
    code, output = segment(scheduler, "--mws-face-edges", "all", "--method", "watershed")
    assert code != 0 and "apply only to --method mws" in output
