"""Motion-trail sheets: one row per class present, one panel per clip."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mdm.render.trails import plot_motion_trails
from toy_data import toy_dataset


def test_sheet_has_a_row_per_class_and_draws_the_figures(tmp_path: Path) -> None:
    data = toy_dataset(clips_per_class=4)
    wide = plot_motion_trails(data.clips, data.labels, data.class_names, data.skeleton, tmp_path / "all.png")
    one_row = plot_motion_trails(data.clips[:4], data.labels[:4], data.class_names, data.skeleton, tmp_path / "one.png")
    image_all, image_one = matplotlib.image.imread(wide), matplotlib.image.imread(one_row)
    assert image_all.shape[0] > 2 * image_one.shape[0]  # three rows against one
    assert image_all.shape[1] == image_one.shape[1]  # same number of columns
    assert (image_all[..., :3] < 0.9).any(axis=-1).mean() > 0.005  # bones were drawn


def test_a_clip_of_another_skeleton_is_refused(tmp_path: Path) -> None:
    data = toy_dataset(clips_per_class=1)
    with pytest.raises(ValueError, match="20, 3"):
        plot_motion_trails([np.zeros((5, 7, 3))], [0], data.class_names, data.skeleton, tmp_path / "x.png")
