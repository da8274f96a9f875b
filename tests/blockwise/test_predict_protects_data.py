"""predict() never destroys data: an output that is, contains or lies inside its input is refused, and
an output another run is writing is left alone, also with ``overwrite=True``."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from daskseg.blockwise import FunctionProcessor, predict
from daskseg.blockwise.done import DoneRecord, read_done
from daskseg.errors import DaskSegError, OutputOverlapsInputError, RecordLockedError
from daskseg.io import open_dataset, write_array

MEAN = FunctionProcessor(lambda x: x[1:-1, 1:-1, 1:-1], context=1, name="crop")


def tree_bytes(top) -> dict[str, str]:
    """Hash of every file under ``top``, by relative path."""
    out = {}
    for root, _, files in os.walk(top):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, top)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(0)
    write_array(tmp_path / "S.zarr", "volumes/raw", rng.random((8, 12, 12)).astype(np.float32), (1, 1, 1))
    write_array(tmp_path / "S.zarr", "volumes/labels", rng.integers(0, 9, (8, 12, 12)).astype(np.uint64), (1, 1, 1))
    return tmp_path / "S.zarr"


@pytest.mark.parametrize(
    "out, relation",
    [("volumes/raw", "is"), ("volumes", "contains"), ("volumes/raw/pred", "lies inside")],
)
def test_output_overlapping_the_raw_is_refused_and_the_raw_kept(sample, out, relation):
    before = tree_bytes(sample)
    assert any(p.startswith("volumes/labels") for p in before)
    with pytest.raises(OutputOverlapsInputError, match=relation) as err:
        predict(raw=f"{sample}/volumes/raw", out=f"{sample}/{out}", processor=MEAN, overwrite=True)
    assert str(sample.resolve() / "volumes/raw") in str(err.value)
    assert isinstance(err.value, DaskSegError)
    assert tree_bytes(sample) == before


def test_relative_and_symlinked_paths_are_resolved_before_comparing(sample, tmp_path, monkeypatch):
    os.symlink(sample, tmp_path / "link.zarr")
    monkeypatch.chdir(tmp_path)
    before = tree_bytes(sample)
    with pytest.raises(OutputOverlapsInputError, match="is the input raw"):
        predict(raw="S.zarr/volumes/raw", out="link.zarr/volumes/raw", processor=MEAN, overwrite=True)
    with pytest.raises(OutputOverlapsInputError, match="contains the input raw"):
        predict(raw=("S.zarr", "/volumes/raw/"), out=("link.zarr", "volumes"), processor=MEAN, overwrite=True)
    assert tree_bytes(sample) == before


def test_hdf5_input_overlapping_output_is_refused(tmp_path):
    raw = np.arange(8 * 12 * 12, dtype=np.float32).reshape(8, 12, 12) / 2000
    write_array(tmp_path / "S.hdf", "volumes/raw", raw, (1, 1, 1))
    before = hashlib.sha256((tmp_path / "S.hdf").read_bytes()).hexdigest()
    with pytest.raises(OutputOverlapsInputError, match="is the input raw"):
        predict(raw=f"{tmp_path}/S.hdf/volumes/raw", out=f"{tmp_path}/S.hdf/volumes/raw", processor=MEAN,
                overwrite=True)
    assert hashlib.sha256((tmp_path / "S.hdf").read_bytes()).hexdigest() == before


def test_a_sibling_output_is_not_mistaken_for_an_overlap(sample):
    """``volumes/raw2`` shares a prefix of characters with ``volumes/raw`` but not a path component."""
    from daskseg.blockwise.predict import check_output_apart

    check_output_apart(f"{sample}/volumes/raw2", {"raw": f"{sample}/volumes/raw"})
    check_output_apart(f"{sample}2.zarr/volumes/raw", {"raw": f"{sample}/volumes/raw"})


@pytest.mark.parametrize("overwrite", [True, False])
def test_an_output_another_run_writes_is_left_alone(sample, tmp_path, overwrite):
    out_dir = tmp_path / "o.zarr" / "pred"
    write_array(tmp_path / "o.zarr", "pred", np.full((6, 10, 10), 3.0, np.float32), (1, 1, 1), offset=(1, 1, 1))
    # a running predict holds its done record open (and locked) for the whole run
    with DoneRecord(out_dir, {"run": "first"}, 4) as first:
        first.mark_done(2)
        first.flush()
        before = tree_bytes(out_dir)
        with pytest.raises(RecordLockedError, match="in use by another process"):
            predict(raw=f"{sample}/volumes/raw", out=f"{tmp_path}/o.zarr/pred", processor=MEAN, overwrite=overwrite,
                    resume=not overwrite)
        assert tree_bytes(out_dir) == before
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "pred").read(), 3.0)
    layout, marks = read_done(out_dir)
    assert layout["layout"] == {"run": "first"} and marks.tolist() == [0, 0, 1, 0]
