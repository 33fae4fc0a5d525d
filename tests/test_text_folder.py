"""Folders of labelled sentences (kerasapps.api.read_text_folder) and the text helpers of kerasapps.testing."""

import pytest

from kerasapps.api import UsageError, read_lines, read_text_folder
from kerasapps.testing import write_text_folder


def test_split_folders_are_read_and_validation_is_carved_from_train(tmp_path):
    root = write_text_folder(tmp_path / "text", per_class=40)
    splits, classes = read_text_folder(root)
    assert classes == ["blue", "green", "red"]
    assert len(splits["test"]) == 60 and len(splits["train"]) + len(splits["validation"]) == 60
    assert 0 < len(splits["validation"]) < 20  # 10% of train by a stable hash
    text, label = splits["train"][0]
    assert label in text.split()  # the default sentences name their class
    assert read_text_folder(root) == (splits, classes)  # the same split on every call


def test_a_flat_folder_is_split_80_10_10(tmp_path):
    (tmp_path / "pos.txt").write_text("".join(f"good {i}\n" for i in range(300)))
    (tmp_path / "neg.txt").write_text("\ufeff" + "".join(f"bad {i}\n\n" for i in range(300)))  # BOM, blank lines
    splits, classes = read_text_folder(tmp_path)
    assert classes == ["neg", "pos"]
    sizes = {split: len(items) for split, items in splits.items()}
    assert sum(sizes.values()) == 600 and 420 < sizes["train"] < 540 and sizes["validation"] > 30
    assert ("bad 0", "neg") in [item for items in splits.values() for item in items]  # BOM dropped


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    write_text_folder(tmp_path)
    (tmp_path / "train" / "red.txt").write_bytes(b"fine\nalso fine\ncaf\xe9 latte\n")
    with pytest.raises(UsageError, match=r"red.txt, line 3: not UTF-8 \(byte 0xe9 at column 4\)"):
        read_text_folder(tmp_path)


@pytest.mark.parametrize("mistake,message", [
    (lambda root: (root / "test" / "red.txt").unlink() or (root / "test" / "purple.txt").write_text("x\n"),
     "has classes not in train: purple"),
    (lambda root: [f.unlink() for f in (root / "test").iterdir()], "the test split has no sentences"),
    (lambda root: [f.unlink() for f in (root / "test").iterdir()] and (root / "test").rmdir(), "no test/ folder"),
])
def test_layout_mistakes_are_one_usage_error(tmp_path, mistake, message):
    root = write_text_folder(tmp_path)
    mistake(root)
    with pytest.raises(UsageError, match=message):
        read_text_folder(root)


def test_an_empty_folder_says_what_layout_it_expects(tmp_path):
    with pytest.raises(UsageError, match=r"no class files \(\*.txt\) under .*layout: PATH/train/<class>.txt"):
        read_text_folder(tmp_path)
    assert read_lines(write_text_folder(tmp_path / "t", {"a": ["one", "two"]}, splits=("train",)) / "train" / "a.txt") \
        == [(1, "one"), (2, "two")]
