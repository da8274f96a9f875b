"""`daskseg demo --recipe long-range --compare-tutorial` at toy size: the long-range network is
trained, predicted (8 channels), segmented by mutex watershed, and reported next to the tutorial
recipe trained with the same settings; unknown or unavailable recipes are one clear error."""

from __future__ import annotations

import pytest

from daskseg.demo import RECIPES, DemoSettings, recipe_problem, run_demo, with_recipe
from daskseg.errors import NetConfigError
from daskseg.io import open_dataset


def test_recipes_set_the_network_and_the_segmentation():
    s = with_recipe(DemoSettings(), "long-range")
    assert s.recipe == "long-range" and s.segment_method == "mws"
    assert s.network_options == {"affinity_neighborhood": "long-range"}
    assert with_recipe(s, "tutorial").network_options == {} and with_recipe(s, "tutorial").segment_method == "watershed"
    with pytest.raises(NetConfigError, match="unknown recipe 'fancy'"):
        with_recipe(s, "fancy")
    # MtLSD runs once create_networks takes lsds=; until then it says what is missing
    problem = recipe_problem("mtlsd")
    assert problem is None or "lsds" in problem
    assert set(RECIPES) >= {"tutorial", "long-range", "mtlsd"}


@pytest.mark.slow
def test_long_range_demo_reports_against_the_tutorial_recipe(tmp_path):
    settings = with_recipe(DemoSettings(
        train_shape=(40, 160, 160), test_shape=(32, 128, 128), train_input=(28, 84, 84),
        predict_input=(28, 84, 84), num_fmaps=4, iterations=1, workers=1, compare_tutorial=True,
    ), "long-range")
    numbers = run_demo(tmp_path, settings)
    assert open_dataset(tmp_path / "prediction.zarr", "volumes/pred_affs").shape[0] == 8
    assert numbers["recipe"]["name"] == "long-range" and numbers["recipe"]["segment_method"] == "mws"
    assert len(numbers["recipe"]["neighborhood"]) == 8
    container, _, name = numbers["segmentation"]["output"].partition(".zarr/")
    assert open_dataset(container + ".zarr", name).attrs["daskseg"]["producer"]["method"] == "mws"
    tutorial = numbers["tutorial_recipe"]
    assert tutorial["iterations"] == 1 and 0 <= tutorial["segmentation"]["adapted_rand"] <= 1
    assert open_dataset(tmp_path / "tutorial_recipe" / "prediction.zarr", "volumes/pred_affs").shape[0] == 3
    report = (tmp_path / "report.md").read_text()
    assert "Recipe: `long-range` (8 affinity channels, segmented by mutex watershed" in report
    assert "## The `long-range` recipe against the tutorial's" in report
