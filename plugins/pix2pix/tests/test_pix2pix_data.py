"""pix2pix folder layouts (A|B side by side, A/ + B/, CMP facades) and bad input, with files the tests write."""

import pathlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("kerasapps_pix2pix")

import kerasapps  # noqa: E402
from kerasapps.errors import UsageError  # noqa: E402
from kerasapps_pix2pix.data import find_pairs, read_folder  # noqa: E402

CMP_FACADE = pathlib.Path(__file__).resolve().parents[4] / "shared" / "data" / "cmp_facade"


def solid(height, width, colour, channels=3):
    """A uint8 image of one colour (grey: the first value; RGBA: opaque)."""
    image = np.zeros((height, width, channels), np.uint8)
    image[...] = (list(colour) + [255])[:channels] if channels > 1 else colour[0]
    return image


def write(path, image, fmt="png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    path.write_bytes(encode(image).numpy())
    return path


def side_by_side_folder(root, count=4):
    """Good A|B files in root/train and root/val (split folders: no hash split can leave one empty)."""
    for split in ("train", "val"):
        for i in range(count):
            write(root / split / f"{i}.png", solid(10, 20, (1, 2, 3)))


def test_side_by_side_files_split_into_left_a_and_right_b(tmp_path):
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(count):
            both = np.concatenate([solid(20, 20, (200, 0, 0)), solid(20, 20, (0, 0, 200 - i))], axis=1)
            write(tmp_path / split / f"{i}.png", both)
    arrays = read_folder(tmp_path, image_size=16)
    assert arrays["layout"] == "A|B side by side"
    inputs, targets = arrays["train"]
    assert inputs.shape == targets.shape == (3, 16, 16, 3) and inputs.dtype == np.uint8
    np.testing.assert_array_equal(inputs[0, 8, 8], [200, 0, 0])
    np.testing.assert_array_equal(targets[1, 8, 8], [0, 0, 199])
    assert len(arrays["validation"][0]) == 1 and len(arrays["test"][0]) == 2 and arrays["scored_split"] == "test"


def test_a_and_b_folders_pair_by_name_and_convert_grey_and_rgba(tmp_path):
    names = [f"img{i:02d}" for i in range(30)]
    for i, name in enumerate(names):
        write(tmp_path / "A" / f"{name}.png", solid(10, 14, (i * 8, 0, 0), channels=1 if i % 2 else 3))
        write(tmp_path / "B" / f"{name}.png", solid(12, 12, (0, i * 8, 0), channels=4))  # RGBA: alpha dropped
    layout, pairs = find_pairs(tmp_path)
    assert layout == "A/ and B/ folders"
    assert all(a.stem == b.stem for split in pairs.values() for a, b in split)
    assert len({pair for split in pairs.values() for pair in split}) == 30
    arrays = read_folder(tmp_path, image_size=16)
    inputs, targets = arrays["train"]
    assert inputs.shape[1:] == targets.shape[1:] == (16, 16, 3)
    # Each A's red level (grey files: the same level on every channel) pairs with its own B's green level.
    for a, b in zip(inputs, targets):
        assert a[0, 0, 0] == b[0, 0, 1] and b[0, 0, 0] == 0


def test_cmp_facade_layout_renders_palette_labels_and_pairs_them_with_photos(tmp_path):
    palette = [0, 0, 0, 0, 0, 170, 0, 0, 255, 255, 85, 0]  # ids 0..3 as CMP colours
    import zlib

    def palette_png(ids):
        """A minimal 8-bit palette ("P" mode) PNG, as the CMP base set stores its labels."""
        def chunk(kind, data):
            return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        height, width = ids.shape
        header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 3, 0, 0, 0])
        raw = b"".join(b"\x00" + bytes(row.tolist()) for row in ids.astype(np.uint8))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(palette))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    base = tmp_path / "base"
    base.mkdir()
    for i in range(25):
        height, width = 30 + i, 20 + 2 * i  # sizes vary, as in the real set
        ids = np.full((height, width), 1 + i % 3, np.uint8)
        (base / f"cmp_b{i:04d}.png").write_bytes(palette_png(ids))
        write(base / f"cmp_b{i:04d}.jpg", solid(height, width, (90, 90, 90)), fmt="jpg")
        (base / f"cmp_b{i:04d}.xml").write_text("<annotation/>")
    arrays = read_folder(tmp_path, image_size=16)
    assert arrays["layout"] == "CMP facades"
    _, pairs = find_pairs(tmp_path)
    assert len({pair for split in pairs.values() for pair in split}) == 25
    inputs, targets = (np.concatenate([arrays[s][k] for s in ("train", "validation", "test")]) for k in (0, 1))
    colours = {tuple(a[8, 8]) for a in inputs}
    assert colours <= {(0, 0, 170), (0, 0, 255), (255, 85, 0)} and len(colours) == 3  # rendered, not ids
    assert np.abs(targets.astype(int) - 90).max() <= 3  # the photo (JPEG) is the target


@pytest.mark.skipif(not (CMP_FACADE / "base").is_dir(), reason="shared CMP facade data not present")
def test_the_shared_cmp_facade_folder_is_read_as_it_is():
    layout, pairs = find_pairs(CMP_FACADE)
    assert layout == "CMP facades"
    counts = {split: len(pairs[split]) for split in ("train", "validation", "test")}
    assert sum(counts.values()) == 378 and min(counts.values()) > 20
    a, b = pairs["test"][0]
    assert a.suffix == ".png" and b == a.with_suffix(".jpg")


@pytest.mark.parametrize("case, message", [
    ("not_twice_as_wide", "must be twice as wide"),
    ("unmatched", "no partner of the same name"),
    ("corrupt", "is not a PNG, JPEG"),
    ("truncated", "could not be decoded"),
])
def test_bad_folders_name_the_file(tmp_path, case, message):
    if case == "not_twice_as_wide":
        side_by_side_folder(tmp_path)
        write(tmp_path / "train" / "odd.png", solid(10, 25, (1, 2, 3)))
        culprit = "odd.png"
    elif case == "unmatched":
        for i in range(12):
            write(tmp_path / "A" / f"{i}.png", solid(8, 8, (1, 2, 3)))
            write(tmp_path / "B" / f"{i}.png", solid(8, 8, (1, 2, 3)))
        write(tmp_path / "B" / "lonely.png", solid(8, 8, (1, 2, 3)))
        culprit = "lonely.png"
    else:
        side_by_side_folder(tmp_path)
        data = write(tmp_path / "val" / "x.png", solid(10, 20, (1, 2, 3))).read_bytes()
        (tmp_path / "val" / "x.png").write_bytes(b"garbage" * 8 if case == "corrupt" else data[:40])
        culprit = "x.png"
    with pytest.raises(UsageError, match=message) as error:
        read_folder(tmp_path, image_size=16)
    assert culprit in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["not_twice_as_wide", "corrupt"])
def test_a_run_stops_with_one_line_naming_the_bad_file(tmp_path, case):
    # The command line prints that line after "error: " and exits 2 (tests/test_python_api.py).
    side_by_side_folder(tmp_path / "data")
    if case == "corrupt":
        # A JPEG header and nothing else: passes the magic-bytes check, fails to decode.
        (tmp_path / "data" / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 30)
    else:
        write(tmp_path / "data" / "train" / "broken.png", solid(10, 10, (1, 2, 3)))
    with pytest.raises(UsageError) as refused:
        kerasapps.train("pix2pix", dataset=f"folder:{tmp_path / 'data'}", image_size=16, workdir=tmp_path / "run",
                        verbose=0)
    lines = str(refused.value).splitlines()
    assert len(lines) == 1 and "broken." in lines[0], lines
