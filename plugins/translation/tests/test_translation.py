"""The translation task: phrasebook data, text rules, loaders, BLEU, decoding on a trained model, serving."""

import gzip
import io
import json
import re
import sys

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import run_cli as cli
from kerasapps.testing import check_export

tf = pytest.importorskip("tensorflow")
pytest.importorskip("kerasapps_translation")

TINY = ["--dataset", "phrasebook", "--epochs", "3", "--batch-size", "32", "--set", "train_examples=1200",
        "--set", "eval_examples=48", "--set", "units=64", "--set", "embed_dim=32", "--set", "beam_size=3"]


def phrasebook_source():
    from kerasapps.data.sources import DatasetSource

    return DatasetSource("phrasebook", "registered", "phrasebook", factory="kerasapps_translation.phrasebook")


def folder_source(path):
    from kerasapps.data.sources import DatasetSource

    return DatasetSource(f"folder:{path}", "folder", str(path))


# -- phrasebook ------------------------------------------------------------------
def test_phrasebook_is_deterministic_disjoint_and_reorders_to_sov():
    from kerasapps_translation import phrasebook

    train = phrasebook.generate("train", 3000)
    assert train == phrasebook.generate("train", 3000) and train != phrasebook.generate("train", 3000, seed=1)
    assert phrasebook.generate("train", 100) == train[:100]
    test = phrasebook.generate("test", 300)
    validation = phrasebook.generate("validation", 300)
    english = [{e for e, _ in pairs} for pairs in (train, validation, test)]
    assert len(english[0]) == 3000 and not (english[0] & english[1] or english[0] & english[2] or english[1] & english[2])
    assert all(phrasebook.split_of(e) == "test" for e in english[2])
    pairs = dict(train + validation + test)
    # One English sentence -> one Japanese sentence, tokenised with single spaces.
    assert all(j == " ".join(j.split()) and j.endswith("。") for j in pairs.values())
    rng = __import__("random").Random(0)
    seen = dict(phrasebook.sentence_pair(rng) for _ in range(5000))
    assert seen["this is a pen ."] == "これ は ペン です 。"
    # SVO -> SOV: the verb comes last, the object before it with を and a counter.
    seen.update(pairs)
    act = next((e, j) for e, j in seen.items() if " buys three pens at the store" in e or " buys three pens" in e)
    assert act[1].split()[-6:] == ["ペン", "を", "三", "本", "買います", "。"], act
    place = next((e, j) for e, j in seen.items() if " at the store" in e and " buys " in e)
    assert "店 で" in place[1] and place[1].index("店 で") < place[1].index("買います"), place
    assert phrasebook.detokenize_japanese("これ は ペン です 。") == "これはペンです。"


# -- text rules ------------------------------------------------------------------
def test_standardize_per_language_rules_keep_japanese_words():
    from kerasapps.data.text import standardize_texts
    from kerasapps_translation.data import detokenize_spaced, make_standardize

    split = make_standardize(True, "split")
    assert standardize_texts(["This is a pen.", "Don't go!", "これ は ペン です 。", "猫は、小さい。"], split) == [
        "this is a pen .", "don't go !", "これ は ペン です 。", "猫は 、 小さい 。"]
    assert standardize_texts(["Hello, World!"], make_standardize(False, "strip")) == ["Hello World"]
    assert standardize_texts(["A  b,c"], make_standardize(True, "keep")) == ["a b,c"]
    # Marks inside words and numbers stay (as sacreBLEU's 13a tokeniser leaves them); the rest split
    # off, and detokenising joins them back to the original text.
    cased = ["A man in a t-shirt-like top, 1.5 m (about 10,000 mm) says \"hi there\" and doesn't stop."]
    tokens = standardize_texts(cased, make_standardize(False, "split"))
    assert tokens == ['A man in a t-shirt-like top , 1.5 m ( about 10,000 mm ) says " hi there " and '
                      "doesn't stop ."]
    assert [t.decode() for t in detokenize_spaced(tf.constant(tokens)).numpy()] == cased


def test_teacher_forcing_and_batch_trimming():
    from kerasapps_translation.data import teacher_forcing, trim_batch

    words = np.array([[5, 6, 0, 0], [7, 0, 0, 0]], np.int32)
    target_in, target_out, weights = teacher_forcing(words)
    assert target_in.tolist() == [[2, 5, 6, 0, 0], [2, 7, 0, 0, 0]]
    assert target_out.tolist() == [[5, 6, 3, 0, 0], [7, 3, 0, 0, 0]]
    assert weights.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    source = tf.constant([[4, 1, 0, 0, 0], [9, 0, 0, 0, 0]])
    inputs, targets, trimmed_weights = trim_batch({"source": source, "target_in": target_in}, target_out, weights)
    assert inputs["source"].shape == (2, 2) and inputs["target_in"].shape == (2, 3)
    assert np.asarray(targets).tolist() == [[5, 6, 3], [7, 3, 0]] and trimmed_weights.shape == (2, 3)


def test_detokenizing_leaves_out_the_unknown_word_as_the_vocabulary_decodes_it():
    from kerasapps.api import Vocabulary
    from kerasapps_translation.task import TranslationTask

    task = TranslationTask(TranslationTask.Config(target_spacing="spaces", target_punctuation="keep"),
                           phrasebook_source())
    vocab = Vocabulary(["<start>", "<end>", "a", "dog"], max_length=4)
    decoded = vocab.decode(vocab.encode(tf.constant(["a zebra dog"])))  # zebra: id 1, the unknown word
    assert task.detokenize(decoded[0].numpy().decode()) == "a dog"


# -- BLEU ---------------------------------------------------------------------------
def test_bleu_matches_sacrebleu_on_tokenised_sentences():
    sacrebleu = pytest.importorskip("sacrebleu")
    from kerasapps_translation.task import translation_scores

    references = ["これ は ペン です 。", "姉 は 今日 店 で りんご を 三 つ 買います 。", "彼 は 病院 に 行きます 。",
                  "猫 は 小さい です 。", "a man is riding a red bike down the street ."]
    hypotheses = ["これ は ペン です 。", "姉 は 店 で りんご を 二 つ 買います 。", "彼 は 駅 に 行きます 。",
                  "猫 は 小さい 。", "a man rides a bike on the street ."]
    scores = translation_scores(hypotheses, references)
    expected = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score
    assert 10 < scores["bleu"] < 100
    assert scores["bleu"] == pytest.approx(expected, abs=1e-6)
    assert scores["exact_match"] == pytest.approx(0.2)
    assert translation_scores(references, references)["bleu"] == pytest.approx(100.0)


# -- loaders ------------------------------------------------------------------------
def write_parallel(root, pairs, stems=("train", "val", "test"), gz=("train",)):
    root.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        for index, language in enumerate(("de", "en")):
            text = "".join(pair[index] + "\n" for pair in pairs).encode()
            if stem in gz:
                (root / f"{stem}.{language}.gz").write_bytes(gzip.compress(text))
            else:
                (root / f"{stem}.{language}").write_bytes(text)
    return root


PAIRS = [("ein Hund läuft .", "a dog runs ."), ("zwei Katzen schlafen .", "two cats sleep ."),
         ("ein Mann liest .", "a man reads .")] * 4


def test_folder_loader_reads_plain_and_gzip_and_names_bad_files(tmp_path):
    from kerasapps.errors import UsageError
    from kerasapps_translation.task import TranslationTask

    root = write_parallel(tmp_path / "ok", PAIRS)
    config = TranslationTask.Config(source="de", target="en", batch_size=4)
    task = TranslationTask(config, folder_source(root))
    datasets = task.build_datasets()
    inputs, targets, weights = next(iter(datasets["train"]))
    assert "läuft" in task.info["source_vocabulary"] and "dog" in task.info["target_vocabulary"]
    assert inputs["source"].shape[0] == 4 and targets.shape == weights.shape
    assert task.references["test"][0] == ["a", "dog", "runs", "."]

    with pytest.raises(UsageError, match="found: de, en"):
        TranslationTask(TranslationTask.Config(), folder_source(root)).build_datasets()
    (root / "val.en").write_text("a dog runs .\n")
    with pytest.raises(UsageError, match=r"val\.de has 12 lines but .*val\.en has 1"):
        task.build_datasets()
    (root / "val.en").write_bytes(b"ok\n" * 5 + b"caf\xe9\n" + b"ok\n" * 6)
    with pytest.raises(UsageError, match=r"val\.en, line 6: not valid UTF-8"):
        task.build_datasets()
    (root / "val.en").write_text("ok\n" * 2 + "  \n" + "ok\n" * 9)
    with pytest.raises(UsageError, match=r"line 3: empty sentence"):
        task.build_datasets()
    skipping = TranslationTask(TranslationTask.Config(source="de", target="en", skip_bad_examples=True),
                               folder_source(root))
    skipping.build_datasets()
    assert len(skipping.texts["validation"][0]) == 11
    (root / "test.de").unlink()
    with pytest.raises(UsageError, match=r"missing test\.de \(or test\.de\.gz\)"):
        skipping.build_datasets()


def test_a_run_on_misaligned_files_or_another_tasks_dataset_is_one_usage_error(tmp_path):
    # The command line prints the message after "error: " and exits 2 (tests/test_python_api.py).
    root = write_parallel(tmp_path / "bad", PAIRS)
    (root / "train.en.gz").write_bytes(gzip.compress(b"one line\n"))
    with pytest.raises(kerasapps.UsageError, match="train.de.gz has 12 lines but"):
        kerasapps.train("translation", dataset=f"folder:{root}", source="de", target="en", workdir=tmp_path / "run",
                        verbose=0)
    with pytest.raises(kerasapps.UsageError, match="cannot read dataset 'shapes'; it reads phrasebook"):
        kerasapps.train("translation", dataset="shapes", workdir=tmp_path / "r2", verbose=0)


def test_mocked_tfds_ted_hrlr_builds_batches():
    tfds = pytest.importorskip("tensorflow_datasets")
    from kerasapps.data.sources import DatasetSource
    from kerasapps_translation.task import TranslationTask

    config = TranslationTask.Config(batch_size=4, source="pt", target="en")
    task = TranslationTask(config, DatasetSource("tfds:ted_hrlr_translate/pt_to_en", "tfds",
                                                 "ted_hrlr_translate/pt_to_en"))
    with tfds.testing.mock_data(num_examples=8):
        datasets = task.build_datasets()
        inputs, targets, weights = next(iter(datasets["train"]))
    assert task.info["source_language"] == "pt" and task.info["target_language"] == "en"
    assert np.all(inputs["target_in"].numpy()[:, 0] == 2)  # <start>
    lengths = weights.numpy().sum(axis=1).astype(int)
    assert np.all(targets.numpy()[np.arange(len(lengths)), lengths - 1] == 3)  # <end> at the last weighted step


@pytest.mark.parametrize("attention, layers", [("bahdanau", 3), ("none", 1)])
def test_model_variants_build_and_decode(attention, layers):
    from kerasapps_translation.task import TranslationTask

    config = TranslationTask.Config(attention=attention, encoder_layers=layers, decoder_layers=layers, units=16,
                                    embed_dim=8, train_examples=64, eval_examples=8, batch_size=8)
    task = TranslationTask(config, phrasebook_source())
    datasets = task.build_datasets()
    model = task.build_model()
    inputs, targets, _ = next(iter(datasets["test"]))
    assert model(inputs).shape == (*targets.shape, len(task.info["target_vocabulary"]) + 2)
    assert ("attention" in [layer.name for layer in model.layers]) == (attention != "none")
    names = [layer.name for layer in model.layers]
    assert ("encoder3" in names and "decoder3" in names) == (layers == 3)
    tokens, log_prob = task.translate_function(model)(inputs["source"])
    assert tokens.shape[1] == 2 * inputs["source"].shape[1] + 10 and np.all(log_prob.numpy() <= 0)


# -- a trained tiny model -------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("translation")
    result = cli("run", "translation", *TINY, cwd=root, check=0)
    return root, result


@pytest.mark.slow
def test_run_reports_bleu_and_exports(trained):
    root, result = trained
    assert "source:" in result.stdout and "output:" in result.stdout and "reference:" in result.stdout
    metrics = json.loads((root / "runs/translation/metrics.json").read_text())["metrics"]
    assert set(metrics) >= {"bleu", "bleu1", "exact_match", "loss", "token_accuracy"}
    assert 0 <= metrics["bleu"] <= metrics["bleu1"] <= 100 and 0 <= metrics["exact_match"] <= 1
    assert metrics["bleu1"] > 20, metrics  # three tiny epochs already get many words right
    assert (root / "saved_models/translation/1/saved_model.pb").exists()


def trained_task(root):
    from kerasapps.registry import discover
    from kerasapps.training.runner import RunOptions, resolve_config
    from kerasapps_translation.task import TranslationTask

    _, _, config = resolve_config(discover(), RunOptions(task="translation", config_file=str(
        root / "runs/translation/config.json")))
    task = TranslationTask(config, phrasebook_source())
    task.build_datasets()
    model = task.build_model()
    model.load_weights(str(root / "runs/translation/best.weights.h5"))
    return task, model


@pytest.mark.slow
def test_beam_one_is_greedy_and_beam_never_scores_below_greedy(trained):
    from kerasapps.modeling.decoding import gnmt_length_penalty

    root, _ = trained
    task, model = trained_task(root)
    sources = tf.constant(task.source_ids["test"][:32])
    greedy, greedy_log_prob = task.translate_function(model, beam_size=1)(sources)
    beam1, beam1_log_prob = task.translate_function(model, beam_size=1, alpha=0.0, use_beam=True)(sources)
    np.testing.assert_array_equal(beam1.numpy(), greedy.numpy())
    np.testing.assert_allclose(beam1_log_prob.numpy(), greedy_log_prob.numpy(), rtol=1e-4, atol=1e-4)
    # Greedy's length-penalised score: its length counts the <end> token (or is the maximum).
    tokens = greedy.numpy()
    lengths = np.where((tokens == 3).any(axis=1), (tokens == 3).argmax(axis=1) + 1, tokens.shape[1])
    for alpha in (0.0, 0.6):
        greedy_score = greedy_log_prob.numpy() / gnmt_length_penalty(lengths, alpha).numpy()
        for width in (3, 5):
            _, score, _ = beam_scores(task, model, sources, width, alpha)
            assert np.all(score >= greedy_score - 1e-4), (alpha, width, score, greedy_score)


def beam_scores(task, model, sources, width, alpha):
    """Tokens, length-penalised score and log-prob of beam search, through the task's own step function."""
    from kerasapps.modeling.decoding import beam_search
    from kerasapps.data.text import END_ID, START_ID
    from kerasapps_translation.models import ModelLayers

    layers = ModelLayers.from_model(task.config, model)
    memory, keys, mask, decoder = layers.encode(sources, training=False)
    state = {"memory": memory, "keys": keys, "mask": mask, "decoder": decoder}

    def step(tokens, state):
        x = layers.target_embedding(tokens[:, tf.newaxis])
        x, new = layers.decode_layers(x, state["decoder"], training=False)
        logits = layers.output_logits(x, state["memory"], state["keys"], state["mask"], training=False)
        return tf.nn.log_softmax(logits[:, 0]), dict(state, decoder=new)

    start = tf.fill([sources.shape[0]], START_ID)
    tokens, score, log_prob = beam_search(step, state, start, END_ID, width, 2 * sources.shape[1] + 10, alpha)
    return tokens.numpy(), score.numpy(), log_prob.numpy()


@pytest.mark.slow
def test_saved_model_translates_empty_and_long_input_with_only_tensorflow(trained, monkeypatch):
    from kerasapps.serving.predict import predict_inputs

    root, _ = trained
    export = root / "saved_models/translation/1"
    long_text = " ".join(["my sister buys three apples at the store today ."] * 50)  # 500 words
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    served = check_export(export, ["this is a pen .", "", long_text, "xyzzy plugh"], out=root / "preds")
    outputs = served.serving["translation"]["values"]
    assert len(outputs) == 4
    assert outputs[0] and " " not in outputs[0], outputs  # Japanese, joined without spaces
    assert isinstance(outputs[1], str) and len(outputs[2]) < 500
    assert [p["translation"] for p in served.predictions] == outputs
    # `kerasapps predict`'s @FILE and - (standard input), in this process (check_export ran the command).
    lines = root / "sentences.txt"
    lines.write_text("this is a pen .\nxyzzy plugh\n", encoding="utf-8")
    from_file = list(predict_inputs(export, [f"@{lines}"], root / "preds"))
    assert [r["input"] for r in from_file] == ["this is a pen .", "xyzzy plugh"]
    assert from_file[0]["translation"] == outputs[0]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("this is a pen .\n".encode())))
    piped = list(predict_inputs(export, ["-"], root / "preds"))
    assert [r["input"] for r in piped] == ["this is a pen ."] and piped[0]["translation"] == outputs[0]


def test_multi30k_benchmark_skips_cleanly_without_the_data(tmp_path, capsys):
    from benchmarks.machine import read_recipe
    from benchmarks.multi30k_translation import CPU_RECIPE, OPTIONS, main, recipe_command

    main(["--data", str(tmp_path / "absent")])
    assert capsys.readouterr().out.startswith("skipped: ")
    # The script runs the recipe; only the options given override it.
    args = __import__("argparse").Namespace(recipe=CPU_RECIPE, steps_per_epoch=None, **dict.fromkeys(OPTIONS))
    args.layers, args.minutes = 2, 5.0
    command = recipe_command(args, tmp_path, tmp_path / "work")
    assert command[command.index("--recipe") + 1] == "multi30k"
    assert [command[i + 1] for i, word in enumerate(command) if word == "--set"] == \
        ["train_minutes=5.0", "encoder_layers=2", "decoder_layers=2"]
    recipe = read_recipe("kerasapps_translation", CPU_RECIPE)
    assert (recipe["length_buckets"], recipe["target_lowercase"], recipe["train_minutes"]) == (2, False, 52.0)


@pytest.mark.slow
def test_validation_bleu_curve_is_logged_and_the_time_budget_stops_training(tmp_path, capsys):
    tiny = dict(train_examples=300, eval_examples=16, units=32, embed_dim=16, beam_size=1, length_buckets=2,
                validation_bleu=True)
    # Both are training's doing (a callback, the budget), so `train`: no held-out scoring or export.
    kerasapps.train("translation", epochs=2, workdir=tmp_path / "run", **tiny,
                    verbose=2)  # one line per epoch, as the command prints when not on a terminal
    rows = (tmp_path / "run" / "validation_bleu.csv").read_text().splitlines()
    assert rows[0] == "epoch,seconds,val_bleu" and [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    printed = re.findall(r"val_bleu (\d+\.\d+)", capsys.readouterr().out)
    assert [round(float(v), 2) for v in printed] == [float(r.split(",")[2]) for r in rows[1:]]

    kerasapps.train("translation", epochs=3, workdir=tmp_path / "budget", **tiny, train_minutes=0.001,
                    verbose=0)
    assert "stopping after epoch 1" in capsys.readouterr().err
    assert json.loads((tmp_path / "budget" / "metrics.json").read_text())["epochs_completed"] == 1
