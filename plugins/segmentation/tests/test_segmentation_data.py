"""Segmentation data: folder: in CamVid's layout (and its error messages), split lists,
colour labels, tfds:oxford_iiit_pet through TFDS's mock data, augmentation, class weights."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

import kerasapps
from kerasapps.data.sources import DatasetSource
from kerasapps.data import shapes
from kerasapps.errors import UsageError
from kerasapps.task import SPLITS
from kerasapps_segmentation.data import find_pairs, read_native
from kerasapps_segmentation.task import VOID, SegmentationTask

CLASSES = "name,r,g,b\n" + "".join(
    f"{name},{r},{g},{b}\n" for name, (r, g, b) in zip(shapes.MASK_CLASS_NAMES, shapes.MASK_COLOURS)
) + "Void,255,255,255\n"
VOID_ID = len(shapes.MASK_CLASS_NAMES)  # the 6th class of the list


def png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(array, np.uint8)
    path.write_bytes(tf.io.encode_png(array if array.ndim == 3 else array[..., None]).numpy())


def write_camvid_like(root, counts=(("train", 10), ("val", 4)), size=24, colour_labels=False):
    """CamVid's layout from shapes scenes: <split>/x.png + <split>annot/x.png (class ids; a void border)."""
    for split, count in counts:
        for i in range(count):
            scene = shapes.generate_scene(i, "train" if split == "train" else "test", seed=5, image_size=size)
            label = scene["mask"].copy()
            label[0, :] = VOID_ID
            png(root / split / f"f{i:03d}.png", scene["image"])
            if colour_labels:
                palette = np.array(list(shapes.MASK_COLOURS) + [(255, 255, 255)], np.uint8)
                png(root / f"{split}annot" / f"f{i:03d}_L.png", palette[label])
            else:
                png(root / f"{split}annot" / f"f{i:03d}.png", label)
    (root / "class_dict.csv").write_text(CLASSES)
    return root


def make_task(root, **config):
    config = SegmentationTask.Config(batch_size=4, **config)
    return SegmentationTask(config, DatasetSource(f"folder:{root}", "folder", str(root)))


def test_folder_reads_camvid_layout_with_void(tmp_path):
    root = write_camvid_like(tmp_path / "data")
    task = make_task(root, augment=False)
    datasets = task.build_datasets()
    assert task.info["class_names"] == list(shapes.MASK_CLASS_NAMES)  # Void left out
    assert task.info["void_names"] == ["Void"] and task.info["image_size"] == [24, 24]
    images, masks = next(iter(datasets["validation"]))
    assert images.shape == (4, 24, 24, 3) and images.dtype == tf.float32 and masks.dtype == tf.int32
    masks = masks.numpy()
    assert (masks[:, 0, :] == VOID).all()  # the void row
    assert set(np.unique(masks[:, 1:, :])) <= set(range(5))
    expected = shapes.generate_scene(0, "test", seed=5, image_size=24)["mask"]
    np.testing.assert_array_equal(masks[0, 1:], expected[1:])
    # no test/ folder: the validation split is the test split, and figures say so
    test_masks = np.concatenate([m.numpy() for _, m in datasets["test"]])
    assert len(test_masks) == 4 and task.info["scored_split"] == "validation"


def test_colour_labels_and_split_lists_with_camvid_prefixes(tmp_path):
    root = write_camvid_like(tmp_path / "data", colour_labels=True)
    for split in ("train", "val"):
        lines = [f"/SegNet/CamVid/{split}/{p.name} /SegNet/CamVid/{split}annot/{p.stem}_L.png"
                 for p in sorted((root / split).iterdir())]
        (root / f"{split}.txt").write_text("\n".join(lines[:3]) + "\n")
    pairs = find_pairs(root)
    assert [len(pairs[s]) for s in ("train", "validation", "test")] == [3, 3, 3]
    assert pairs["train"][0] == (root / "train/f000.png", root / "trainannot/f000_L.png")
    task = make_task(root, augment=False, image_size=(16, 20))
    datasets = task.build_datasets()
    _, masks = next(iter(datasets["train"].unbatch().batch(3)))
    assert masks.shape == (3, 16, 20) and (masks.numpy()[:, 0] == VOID).all()


def test_folder_mistakes_name_the_file(tmp_path):
    root = write_camvid_like(tmp_path / "data")
    (root / "trainannot" / "f003.png").unlink()
    with pytest.raises(UsageError, match=r"train/f003.png: no label file .*trainannot/f003.png"):
        make_task(root).build_datasets()

    png(root / "trainannot" / "f003.png", np.zeros((20, 24)))
    with pytest.raises(UsageError, match=r"trainannot/f003.png: label is 24x20 but its image .*train/f003.png is 24x24"):
        make_task(root).build_datasets()

    png(root / "trainannot" / "f003.png", np.full((24, 24), 9))
    with pytest.raises(UsageError, match=r"trainannot/f003.png: label values up to 9 but the class list"):
        make_task(root).build_datasets()

    colour = np.zeros((24, 24, 3), np.uint8)
    colour[5, 5] = (1, 2, 3)
    png(root / "trainannot" / "f003.png", colour)
    with pytest.raises(UsageError, match=r"trainannot/f003.png: colours not in the class list: \(1, 2, 3\)"):
        make_task(root).build_datasets()

    (root / "class_dict.csv").unlink()
    with pytest.raises(UsageError, match=r"f003.png is a colour label: colour labels need a class list"):
        make_task(root).build_datasets()


def test_folder_mistake_is_one_usage_error_from_a_run(tmp_path):
    # The command line prints the message after "error: " and exits 2 (tests/test_python_api.py).
    root = write_camvid_like(tmp_path / "data")
    (root / "valannot" / "f001.png").unlink()
    with pytest.raises(kerasapps.UsageError, match=f"{root}/val/f001.png: no label file"):
        kerasapps.train("segmentation", dataset=f"folder:{root}", workdir=tmp_path / "run", verbose=0)


def test_tfds_oxford_pet_trimaps_through_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    config = SegmentationTask.Config(batch_size=4, image_size=(32,), class_weighting="median_frequency")
    task = SegmentationTask(config, DatasetSource("tfds:oxford_iiit_pet", "tfds", "oxford_iiit_pet"))
    with tfds.testing.mock_data(num_examples=12):
        datasets = task.build_datasets()
        images, masks = next(iter(datasets["train"]))
    assert task.info["class_names"] == ["background", "pet", "border"]
    assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
    assert set(np.unique(masks.numpy())) <= {0, 1, 2, VOID}  # mock trimaps hold any byte: the rest is void
    assert len(task.info["class_weights"]) == 3
    model = task.build_model()
    assert model.output_shape == (None, 32, 32, 3)


def test_augmentation_moves_image_and_mask_together():
    task = SegmentationTask(SegmentationTask.Config(max_scale=1.5))
    task.info["image_size"] = [32, 32]
    # The mask is a function of the image (class = red channel // 64) on 8x8 blocks: the same
    # geometry applied to both keeps that true away from block edges (bilinear blends them).
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (4, 4)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    image = np.stack([blocks * 64 + 32, blocks * 0, blocks * 0], -1).astype(np.uint8)
    changed = 0
    for seed in range(6):
        tf.random.set_seed(seed)
        out_image, out_mask = task._augment(tf.constant(image), tf.constant(blocks))
        assert out_image.shape == (32, 32, 3) and out_mask.shape == (32, 32)
        agree = (out_image.numpy()[..., 0] // 64 == out_mask.numpy()).mean()
        assert agree > 0.9, agree
        changed += not np.array_equal(out_mask.numpy(), blocks)
    assert changed >= 4
    flip_only = SegmentationTask(SegmentationTask.Config(max_scale=1.0))
    flip_only.info["image_size"] = [32, 32]
    for seed in range(4):
        tf.random.set_seed(seed)
        out_image, out_mask = flip_only._augment(tf.constant(image), tf.constant(blocks))
        np.testing.assert_array_equal(out_image.numpy()[..., 0] // 64, out_mask.numpy())


def test_median_frequency_weights_by_hand():
    task = SegmentationTask(SegmentationTask.Config(class_weighting="median_frequency"))
    task.info["class_names"] = ["a", "b", "c"]
    masks = np.array([[[0, 0], [0, 1]], [[0, 2], [2, VOID]]], np.uint8)
    # freq a = 4/8, b = 1/4 (only image 1 has b), c = 2/4; median 1/2 -> weights 1, 2, 1
    examples = tf.data.Dataset.from_tensor_slices((np.zeros((2, 2, 2, 3), np.uint8), masks))
    assert task._class_weights(examples) == [1.0, 2.0, 1.0]
    milder = SegmentationTask(SegmentationTask.Config(class_weighting="sqrt_median_frequency"))
    milder.info["class_names"] = ["a", "b", "c"]
    assert milder._class_weights(examples) == [1.0, round(2 ** 0.5, 4), 1.0]


def test_colour_jitter_changes_the_image_alone():
    task = SegmentationTask(SegmentationTask.Config(max_scale=1.0, colour_jitter=0.2))
    task.info["image_size"] = [16, 16]
    rng = np.random.default_rng(0)
    image = rng.integers(40, 216, (16, 16, 3)).astype(np.uint8)
    mask = rng.integers(0, 3, (16, 16)).astype(np.uint8)
    plain = SegmentationTask(SegmentationTask.Config(max_scale=1.0))
    plain.info["image_size"] = [16, 16]
    for seed in range(4):
        tf.random.set_seed(seed)
        jittered_image, jittered_mask = task._augment(tf.constant(image), tf.constant(mask))
        tf.random.set_seed(seed)
        flipped_image, flipped_mask = plain._augment(tf.constant(image), tf.constant(mask))
        # Same flip (the first draw), the mask untouched by colour; the pixels moved but stay in range.
        np.testing.assert_array_equal(jittered_mask.numpy(), flipped_mask.numpy())
        assert jittered_image.dtype == tf.uint8
        difference = np.abs(jittered_image.numpy().astype(int) - flipped_image.numpy().astype(int))
        assert 0 < difference.mean() < 80



def test_cosine_schedule_spans_the_training_split_prepare_datasets_counted():
    config = SegmentationTask.Config(lr_schedule="cosine", image_size=(16,), epochs=2, batch_size=4, width=4,
                                     augment=False)
    task = SegmentationTask(config)
    task.info.update(class_names=["a", "b"], image_size=[16, 16])
    splits = {split: tf.data.Dataset.from_tensor_slices((np.zeros((10, 16, 16, 3), np.uint8),
                                                         np.zeros((10, 16, 16), np.uint8))) for split in SPLITS}
    task.prepare_datasets(splits)
    assert task.info["train_examples"] == 10
    optimizer = task.build_model().optimizer
    optimizer.iterations.assign(4)  # 2 steps per epoch, 2 epochs: the end of the run
    assert float(optimizer.learning_rate) == pytest.approx(config.learning_rate * 0.05)


CAMVID = pathlib.Path(__file__).resolve().parents[4] / "shared" / "data" / "camvid"


@pytest.mark.slow
@pytest.mark.skipif(not (CAMVID / "train.txt").exists(), reason="CamVid copy not present")
def test_reads_the_real_camvid_copy():
    from kerasapps_segmentation.data import _read_pair

    pairs = find_pairs(CAMVID)
    assert [len(pairs[s]) for s in ("train", "validation", "test")] == [367, 101, 101]
    # The drives the task page quotes: val is all 0016E5; holding out 0001TP trains on 406 frames.
    assert {image.name.split("_")[0] for image, _ in pairs["validation"]} == {"0016E5"}
    held_out = find_pairs(CAMVID, holdout_groups=("0001TP",))
    assert [len(held_out[s]) for s in ("train", "validation", "test")] == [406, 62, 62]
    image, ids = _read_pair(*pairs["train"][0], None)
    assert image.shape == (360, 480, 3) and ids.shape == (360, 480)
    assert ids.max() <= 11


def write_drives(root, size=16):
    """Frames named by their drive as CamVid's are (DRIVE_NNNN.png): drives A, B, C in train/, and
    more frames of C in val/ (as CamVid's val holds only frames of a drive train also has)."""
    counts = {"train": {"A": 3, "B": 4, "C": 5}, "val": {"C": 2}}
    for split, drives in counts.items():
        for drive, count in drives.items():
            for i in range(count):
                scene = shapes.generate_scene(i + 100 * (split == "val"), "train", seed=ord(drive), image_size=size)
                png(root / split / f"{drive}_{i:04d}.png", scene["image"])
                png(root / f"{split}annot" / f"{drive}_{i:04d}.png", scene["mask"])
    (root / "class_dict.csv").write_text(CLASSES)
    return root


def drives_of(pairs):
    return {image.name.split("_")[0] for image, _ in pairs}


def test_holdout_groups_validate_on_whole_drives_and_train_on_the_rest(tmp_path):
    root = write_drives(tmp_path / "data")
    plain = find_pairs(root)
    assert [len(plain[s]) for s in SPLITS] == [12, 2, 2]  # unchanged without the option

    pairs = find_pairs(root, holdout_groups=("A",))
    assert [image.name for image, _ in pairs["validation"]] == ["A_0000.png", "A_0001.png", "A_0002.png"]
    assert drives_of(pairs["train"]) == {"B", "C"} and len(pairs["train"]) == 4 + 5 + 2  # val's C frames train
    assert pairs["test"] == pairs["validation"]  # no test split: the held-out drive is scored
    assert all(label.parent.name == image.parent.name + "annot" and label.name == image.name
               for image, label in pairs["train"] + pairs["validation"])
    assert find_pairs(root, holdout_groups=("A",)) == pairs  # the same split every time

    pairs = find_pairs(root, holdout_groups=("C", "B"))
    assert drives_of(pairs["validation"]) == {"B", "C"} and len(pairs["validation"]) == 4 + 5 + 2
    assert drives_of(pairs["train"]) == {"A"}
    assert not drives_of(pairs["train"]) & drives_of(pairs["validation"])


def test_holdout_groups_keep_a_test_split_and_a_group_pattern(tmp_path):
    root = write_drives(tmp_path / "data")
    png(root / "test" / "A_0100.png", np.zeros((16, 16, 3)))
    png(root / "testannot" / "A_0100.png", np.zeros((16, 16)))
    pairs = find_pairs(root, holdout_groups=("B",))
    assert [image.name for image, _ in pairs["test"]] == ["A_0100.png"]  # test is untouched
    assert drives_of(pairs["validation"]) == {"B"} and drives_of(pairs["train"]) == {"A", "C"}
    task = make_task(root, augment=False, holdout_groups=("B",))
    task.build_datasets()
    assert task.info["scored_split"] == "test"  # figures are test figures here
    # Groups by the frame number's first digit instead: 0 for every frame here, so it holds out everything.
    with pytest.raises(UsageError, match=r"holding out 0 leaves no group to train on"):
        find_pairs(root, holdout_groups=("0",), group_pattern=r"[A-Z]_(\d)")
    pairs = find_pairs(root, holdout_groups=("C_0000",), group_pattern=r"C_0000|[A-Z]")
    assert [image.name for image, _ in pairs["validation"]] == ["C_0000.png", "C_0000.png"]  # train's and val's


def test_holdout_groups_reach_the_datasets_and_the_served_test_split(tmp_path):
    root = write_drives(tmp_path / "data")
    task = make_task(root, augment=False, holdout_groups=("B",))
    datasets = task.build_datasets()
    assert task.info["train_examples"] == 10 and task.info["scored_split"] == "validation"  # the held-out drive
    assert [sum(len(masks) for _, masks in datasets[split]) for split in ("validation", "test")] == [4, 4]
    _, masks = next(iter(datasets["validation"]))
    expected = shapes.generate_scene(0, "train", seed=ord("B"), image_size=16)["mask"]
    np.testing.assert_array_equal(masks.numpy()[0], expected)
    served = list(read_native(root, task.config, "test", task.info["label_ids"], VOID))
    assert len(served) == 4 and served[0][0] == (root / "train" / "B_0000.png").read_bytes()


def test_train_on_validation_trains_the_final_model_on_train_and_val(tmp_path, capsys):
    root = write_drives(tmp_path / "data")
    pairs = find_pairs(root, train_on_validation=True)
    plain = find_pairs(root, quiet=True)
    assert pairs["train"] == plain["train"] + plain["validation"] and len(pairs["train"]) == 14
    assert pairs["validation"] == plain["validation"] == pairs["test"]  # still scored (on frames trained on)
    assert "note: train_on_validation: training on train and val (14 images); val (2) is scored on images " \
        "trained on" in capsys.readouterr().out
    task = make_task(root, augment=False, train_on_validation=True)
    task.build_datasets()
    assert task.info["train_examples"] == 14
    with pytest.raises(UsageError, match=r"^train_on_validation trains on the held-out groups too; choose "):
        find_pairs(root, holdout_groups=("A",), train_on_validation=True)


def test_holdout_mistakes_name_the_groups_there_are(tmp_path):
    root = write_drives(tmp_path / "data")
    with pytest.raises(UsageError, match=r"^holdout_groups: no group named A_; the groups \(files\) are: "
                                         r"A \(3\), B \(4\), C \(7\)$"):
        find_pairs(root, holdout_groups=("A_",))
    with pytest.raises(UsageError, match=r"^holdout_groups: holding out A, B, C leaves no group to train on"):
        find_pairs(root, holdout_groups=("A", "B", "C"))
    with pytest.raises(UsageError, match=r"holdout_groups: groups are file-name prefixes of folder: data; "
                                         r"--dataset shapes has no files"):
        SegmentationTask(SegmentationTask.Config(holdout_groups=("A",)),
                         DatasetSource("shapes", "registered", "shapes")).build_datasets()


def test_unknown_holdout_group_is_one_error_line_from_a_run(tmp_path, capsys):
    # The command line prints the message after "error: " and exits 2 (tests/test_python_api.py).
    root = write_drives(tmp_path / "data")
    with pytest.raises(kerasapps.UsageError) as refused:
        kerasapps.train("segmentation", dataset=f"folder:{root}", holdout_groups="A,Seq05VD",
                        workdir=tmp_path / "run", verbose=0)
    assert str(refused.value) == "holdout_groups: no group named Seq05VD; the groups (files) are: A (3), B (4), C (7)"
    assert not [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_crop_size_trains_on_crops_of_the_image_with_the_mask_cut_alike():
    # A mask that is a function of the image (class = red // 64) on 16x16 blocks: a crop (with or
    # without flip and zoom) keeps that true (away from block edges, which a zoom blends), and
    # only the crop_size window comes out.
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 4, (5, 6)).repeat(16, 0).repeat(16, 1).astype(np.uint8)  # 80x96
    image = np.stack([blocks * 64 + 32, blocks * 0, blocks * 0], -1).astype(np.uint8)
    for augment, max_scale in ((False, 1.0), (True, 1.0), (True, 1.5)):
        task = SegmentationTask(SegmentationTask.Config(crop_size=(32, 48), augment=augment, max_scale=max_scale))
        task.info["image_size"] = [80, 96]
        windows = set()
        for seed in range(8):
            tf.random.set_seed(seed)
            out_image, out_mask = task._augment(tf.constant(image), tf.constant(blocks))
            assert out_image.shape == (32, 48, 3) and out_mask.shape == (32, 48)
            agree = (out_image.numpy()[..., 0] // 64 == out_mask.numpy()).mean()
            assert agree == 1.0 if max_scale == 1.0 else agree > 0.9, (augment, agree)
            windows.add(out_mask.numpy().tobytes())
        assert len(windows) >= 4, (augment, len(windows))  # random places, not one fixed crop
    without_augment = SegmentationTask(SegmentationTask.Config(crop_size=(16,), augment=False))
    without_augment.info["image_size"] = [80, 96]
    out_image, out_mask = without_augment._augment(tf.constant(image), tf.constant(blocks))
    found = [(top, left) for top in range(65) for left in range(81)
             if np.array_equal(blocks[top:top + 16, left:left + 16], out_mask.numpy())
             and np.array_equal(image[top:top + 16, left:left + 16], out_image.numpy())]
    assert found  # a window of the frame itself, unscaled (crop_size=16: a 16x16 square)


@pytest.mark.parametrize("model, size", [("segnet_basic", 32), ("unet", 36)])
def test_crop_size_trains_on_crops_and_scores_and_serves_whole_images(tmp_path, model, size):
    # U-Net at 36: its pooling rounds 9 up to 5, so each upsampled map is cropped to its skip's
    # size, which a network for any size learns only when it runs.
    root = write_camvid_like(tmp_path / "data", size=size)
    result = kerasapps.run("segmentation", dataset=f"folder:{root}", crop_size="16,24", model=model, width=8,
                           epochs=1, batch_size=4, workdir=tmp_path / "run", export_dir=tmp_path / "models",
                           verbose=0, samples=0)
    task = SegmentationTask(SegmentationTask.Config(crop_size=(16, 24), batch_size=4),
                            DatasetSource(f"folder:{root}", "folder", str(root)))
    datasets = task.build_datasets()
    train_images, train_masks = next(iter(datasets["train"]))
    test_images, _ = next(iter(datasets["test"]))
    assert train_images.shape[1:] == (16, 24, 3) and train_masks.shape[1:] == (16, 24)
    assert test_images.shape[1:] == (size, size, 3)  # scored on whole images
    assert result.metrics["mean_iou"] >= 0 and result.metrics["pixel_accuracy"] > 0
    served = tf.saved_model.load(str(result.export_path)).signatures["serving_default"]
    frame = (root / "val" / "f000.png").read_bytes()
    assert served(image_bytes=tf.constant([frame]))["mask"].shape == (1, size, size)


def test_a_crop_larger_than_the_images_is_one_error(tmp_path):
    root = write_camvid_like(tmp_path / "data", size=24)
    with pytest.raises(kerasapps.UsageError) as refused:
        kerasapps.train("segmentation", dataset=f"folder:{root}", crop_size="32", workdir=tmp_path / "run", verbose=0)
    assert str(refused.value) == "crop_size 32,32 is larger than the images the model sees (image_size 24,24)"
    with pytest.raises(kerasapps.UsageError, match="crop_size: expected SIDE or HEIGHT,WIDTH"):
        SegmentationTask.Config(crop_size=(8, 8, 8)).validate()
