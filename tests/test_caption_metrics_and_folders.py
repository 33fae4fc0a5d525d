"""Flickr8k-layout folders (kerasapps.data.captions) and the caption scorers (CIDEr-D against the COCO code)."""

import pathlib
import random

import pytest

from kerasapps.data.captions import read_captions_folder
from kerasapps.metrics.cider import corpus_cider, sentence_cider
from kerasapps.errors import UsageError

# The smallest valid PNG (1x1, grey): enough for the header checks the folder reader makes.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                    "3a7e9b550000000a4944415478da63600000000200015e5bcb570000000049454e44ae426082")


def flickr_copy(root: pathlib.Path, photos=10, lists=("train", "dev"), image_folder="Images", token_file=False):
    """Photos img0..img{n-1}.png, two captions each; split lists: train 0-5, dev 6-7, test 8-9."""
    (root / image_folder).mkdir(parents=True)
    for i in range(photos):
        (root / image_folder / f"img{i}.png").write_bytes(PNG)
    if token_file:
        lines = [f"img{i}.png#{k}\tA dog number {i} , take {k} ." for i in range(photos) for k in range(2)]
        (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    else:
        rows = ["image,caption"] + [f"img{i}.png,A dog number {i} take {k}" for i in range(photos) for k in range(2)]
        (root / "captions.txt").write_text("\n".join(rows) + "\n")
    ranges = {"train": range(0, 6), "dev": range(6, 8), "test": range(8, 10)}
    for split in lists:
        (root / f"Flickr_8k.{split}Images.txt").write_text("".join(f"img{i}.png\n" for i in ranges[split]))
    return root


def test_a_copy_without_the_test_list_scores_dev_and_says_so(tmp_path, capsys):
    folder = read_captions_folder(flickr_copy(tmp_path / "f"))
    assert folder.names["train"] == [f"img{i}.png" for i in range(6)]
    assert folder.names["validation"] == folder.names["test"] == ["img6.png", "img7.png"]
    assert folder.scored_split == "dev"
    err = capsys.readouterr().err
    assert "has no Flickr_8k.testImages.txt: the dev split (2 images) is scored as the test split" in err
    assert "figures are dev figures" in err
    read_captions_folder(tmp_path / "f", quiet=True)
    assert capsys.readouterr().err == ""


def test_the_full_release_reads_all_three_lists(tmp_path, capsys):
    folder = read_captions_folder(flickr_copy(tmp_path / "f", lists=("train", "dev", "test")))
    assert folder.scored_split == "test"
    assert folder.names["validation"] == ["img6.png", "img7.png"] and folder.names["test"] == ["img8.png", "img9.png"]
    assert folder.captions["test"][0] == ["A dog number 8 take 0", "A dog number 8 take 1"]
    assert "dev" not in capsys.readouterr().err


def test_the_official_token_file_its_folder_name_and_its_phantom_ids(tmp_path, capsys):
    root = flickr_copy(tmp_path / "f", lists=("train", "dev", "test"), image_folder="Flicker8k_Dataset",
                       token_file=True)
    with (root / "Flickr8k.token.txt").open("a") as f:  # the release's NAME.jpg.1 ids: no photo of their own
        f.write("img3.png.1#0\tA phantom caption .\nimg3.png.1#1\tAnother one .\n")
    folder = read_captions_folder(root)
    assert folder.captions["train"][3] == ["A dog number 3 , take 0 .", "A dog number 3 , take 1 ."]
    err = capsys.readouterr().err
    assert "note: Flickr8k.token.txt: left out 2 captions of img3.png.1, an id Flickr8k gives no photo" in err
    assert len(err.strip().splitlines()) == 1


def test_quotes_and_commas_inside_captions(tmp_path):
    root = flickr_copy(tmp_path / "f")
    (root / "captions.txt").write_text(
        "image,caption\n"
        'img0.png,"A man , in a shirt that reads "" Mambo "" , waves ."\n'  # CSV-quoted, as Kaggle's copy is
        'img0.png,two girls hold up a card reading " know what this is " ?\n'  # a bare quote inside: kept
        "img1.png,a dog, a cat, and a bird\n"  # unquoted commas: the rest of the row is the caption
        + "".join(f"img{i}.png,a caption\n" for i in range(2, 10)))
    folder = read_captions_folder(root, quiet=True)
    assert folder.captions["train"][0] == ['A man , in a shirt that reads " Mambo " , waves .',
                                          'two girls hold up a card reading " know what this is " ?']
    assert folder.captions["train"][1] == ["a dog, a cat, and a bird"]


@pytest.mark.parametrize("row, message", [
    ("img99.png,a dog runs", "captions.txt, row 2: image 'img99.png' not found in"),
    ("img1.png,   ", "captions.txt, row 2: empty caption"),
    ("../img1.png,a dog", "captions.txt, row 2: image '../img1.png' leads outside"),
])
def test_bad_rows_are_one_error_naming_the_row_unless_skipped(tmp_path, capsys, row, message):
    root = flickr_copy(tmp_path / "f")
    text = (root / "captions.txt").read_text().splitlines()
    (root / "captions.txt").write_text("\n".join([text[0], row] + text[1:]) + "\n")
    with pytest.raises(UsageError, match="skip_bad_examples=true skips such rows") as caught:
        read_captions_folder(root)
    assert message in str(caught.value)
    folder = read_captions_folder(root, skip_bad_examples=True, quiet=True)
    assert folder.skipped_rows == 1 and "skipped 1 bad rows" in capsys.readouterr().err
    assert sum(map(len, folder.captions["train"])) == 12


def test_cider_d_is_the_coco_codes_on_a_hand_made_corpus():
    coco = pytest.importorskip("pycocoevalcap.cider.cider")
    rng = random.Random(0)
    words = "a dog man woman runs on the grass beach red ball in water two children play".split()
    references = [[[rng.choice(words) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 5))]
                  for _ in range(40)]
    hypotheses = [[rng.choice(words) for _ in range(rng.randint(0, 10))] for _ in range(40)]
    hypotheses[0] = list(references[0][0])  # one exact match, one empty hypothesis, one-word ones
    hypotheses[1] = []
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(h)] for i, h in enumerate(hypotheses)}
    expected, per_sentence = coco.Cider().compute_score(gts, res)
    assert corpus_cider(hypotheses, references) == pytest.approx(expected, rel=1e-12)
    assert sentence_cider(hypotheses, references) == pytest.approx(list(per_sentence), rel=1e-9, abs=1e-12)
    assert sentence_cider(hypotheses, references)[1] == 0.0


def test_cider_d_by_hand_and_bleu_against_the_coco_code():
    # Two photos, one reference each; the hypothesis repeats photo 0's reference. Every n-gram of
    # photo 0 is in one of the two documents: idf log(2/1); the cosine of equal vectors is 1 for
    # each n, so CIDEr-D = 10 for photo 0 and 0 for photo 1 (nothing shared), mean 5.
    hypotheses = [["a", "dog", "runs", "fast"], ["blue", "sky"]]
    references = [[["a", "dog", "runs", "fast"]], [["a", "cat", "sleeps"]]]
    assert sentence_cider(hypotheses, references) == pytest.approx([10.0, 0.0])
    # Clipping: saying "dog" twice gains nothing over the reference's one "dog".
    twice = sentence_cider([["dog", "dog"], ["x"]], [[["dog"]], [["cat"]]])[0]
    once = sentence_cider([["dog"], ["x"]], [[["dog"]], [["cat"]]])[0]
    assert twice < once
    bleu = pytest.importorskip("pycocoevalcap.bleu.bleu")
    from kerasapps.metrics.bleu import corpus_bleu

    rng = random.Random(1)
    words = "a dog man runs on the grass beach red ball".split()
    refs = [[[rng.choice(words) for _ in range(rng.randint(3, 9))] for _ in range(3)] for _ in range(30)]
    hyps = [r[0][: rng.randint(2, len(r[0]))] + [rng.choice(words)] for r in refs]
    coco_bleu, _ = bleu.Bleu(4).compute_score({i: [" ".join(x) for x in r] for i, r in enumerate(refs)},
                                              {i: [" ".join(h)] for i, h in enumerate(hyps)}, verbose=0)
    ours = corpus_bleu(hyps, refs)
    assert [ours[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(coco_bleu, abs=1e-6)
