"""Class texts and the offline text encoder."""

import os
from pathlib import Path

import pytest
import torch
import yaml

from mdm.data.classes import load_class_table
from mdm.errors import ConfigError, UserError
from mdm.text import (
    TEXTS_DIR,
    TextEncoder,
    bundled_model_dir,
    class_texts,
    read_class_texts,
)


@pytest.mark.parametrize("table", ["nw_ucla", "kard", "humanact12", "ntu120"])
def test_shipped_texts_cover_their_class_tables_in_order(table: str) -> None:
    names = list(load_class_table(table).values())
    texts = read_class_texts(TEXTS_DIR / f"{table}.yaml")
    assert list(texts) == names
    assert all(text.coarse and text.fine for text in texts.values())


def test_a_dataset_without_texts_gets_sentences_from_its_class_names(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="mdm.text"):
        texts = class_texts(["lift_dumbbell", "run"], dataset="archive")
    assert [t.coarse for t in texts] == [("lift dumbbell",), ("run",)]
    assert "lift dumbbell" in texts[0].fine and "--texts" in caplog.text
    assert class_texts(["walk around"], dataset="nw-ucla")[0].fine == \
        read_class_texts(TEXTS_DIR / "nw_ucla.yaml")["walk around"].fine


@pytest.mark.parametrize(("content", "words"), [
    ("classes: [{name: a, coarse: [a]}]", "class(es) ['b']"),
    ("classes: [{name: a}, {name: b}, {name: c}]", "['c'] that the data does not have"),
    ("classes: [{name: a}, {name: a}, {name: b}]", "appears twice"),
    ("classes: [{name: a, coarse: []}, {name: b}]", "'coarse'"),
    ("classes: [{name: a, fine: 3}, {name: b}]", "'fine'"),
    ("classes: [{coarse: [x]}]", "needs a 'name'"),
    ("[1, 2]", "'classes' list"),
    ("classes: [", "not valid YAML"),
])
def test_a_bad_texts_file_is_refused_with_one_message(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        class_texts(["a", "b"], texts_file=path)
    assert str(path) in str(error.value) and words in str(error.value)


def test_a_users_texts_file_is_taken_in_the_datas_class_order(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text(yaml.safe_dump({"classes": [{"name": "b", "coarse": ["bee"], "fine": "B moves."},
                                                {"name": "a", "coarse": ["ay"]}]}))
    texts = class_texts(["a", "b"], texts_file=path)
    assert [t.name for t in texts] == ["a", "b"] and texts[1].fine == "B moves." and texts[0].fine == "ay"


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set for the whole suite (conftest.py): nothing is downloaded
    return TextEncoder()


def test_the_encoder_works_offline_and_is_deterministic(encoder: TextEncoder) -> None:
    sentences = ["a person waves one hand", "someone waves a hand above the head", "a person sits down on a chair"]
    first, second = encoder.encode(sentences), encoder.encode(sentences[::-1])
    assert first.shape == (3, 384) and torch.allclose(first.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(first, second.flip(0), atol=1e-5)  # no dependence on batch order or padding
    similarity = first @ first.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1  # waving is nearer waving than sitting


def test_weights_that_do_not_match_their_checksum_are_refused() -> None:
    with pytest.raises(UserError, match="SHA-256"):
        TextEncoder(bundled_model_dir(), sha256="0" * 64)
    with pytest.raises(UserError, match="not a text-encoder folder"):
        TextEncoder(TEXTS_DIR)
