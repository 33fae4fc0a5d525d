"""``--dataset phrasebook``: English-to-Japanese sentence pairs generated from a small grammar.

English is subject-verb-object; Japanese is subject-object-verb with particles
(は topic, を object, に destination/time, で place of action) and counters after
the number (ペン を 三 本, 猫 を 二 匹), so word order changes and a model must
learn an alignment rather than copy positions::

    this is a pen .                                  これ は ペン です 。
    my sister buys three apples at the store today .  姉 は 今日 店 で りんご を 三 つ 買います 。

**Tokenisation of the Japanese side.** Sentences are generated already split into
words with single spaces: nouns, particles, numbers and counters, the polite verb
form (買います) and 。 are separate tokens. The model reads and writes these tokens
and BLEU is computed on them; serving output joins them without spaces
(これはペンです。), as Japanese is written.

Deterministic: the pairs depend only on (split, count, seed). A pair belongs to
the split chosen by a stable hash of its English sentence, so train, validation
and test never share a sentence. Pure Python; no TensorFlow needed.

Example::

    pairs = generate("train", 5000)      # [("this is a pen .", "これ は ペン です 。"), ...]
"""

from __future__ import annotations

import random

from kerasapps.api import hash_split

LANGUAGES = ("en", "ja")
SPLIT_FRACTIONS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))

# (english, japanese, third-person singular)
SUBJECTS = [
    ("i", "私", False), ("you", "あなた", False), ("he", "彼", True), ("she", "彼女", True),
    ("we", "私たち", False), ("they", "彼ら", False), ("my mother", "母", True), ("my father", "父", True),
    ("my brother", "兄", True), ("my sister", "姉", True), ("the teacher", "先生", True),
    ("the student", "学生", True), ("the child", "子供", True), ("the doctor", "医者", True),
    ("my friend", "友達", True),
]
# Counted objects: singular, plural, japanese, counter, kind (which verbs take it).
OBJECTS = [
    ("pen", "pens", "ペン", "本", "thing"), ("pencil", "pencils", "鉛筆", "本", "thing"),
    ("umbrella", "umbrellas", "傘", "本", "thing"), ("book", "books", "本", "冊", "reading"),
    ("notebook", "notebooks", "ノート", "冊", "reading"), ("magazine", "magazines", "雑誌", "冊", "reading"),
    ("apple", "apples", "りんご", "つ", "food"), ("orange", "oranges", "みかん", "つ", "food"),
    ("egg", "eggs", "卵", "つ", "food"), ("cake", "cakes", "ケーキ", "つ", "food"),
    ("ticket", "tickets", "切符", "枚", "thing"), ("plate", "plates", "皿", "枚", "washing"),
    ("shirt", "shirts", "シャツ", "枚", "washing"), ("cat", "cats", "猫", "匹", "animal"),
    ("dog", "dogs", "犬", "匹", "animal"), ("fish", "fish", "魚", "匹", "animal"),
]
NUMBERS = [("one", "一"), ("two", "二"), ("three", "三"), ("four", "四"), ("five", "五")]
# Transitive verbs: base form, third-person form, japanese, object kinds taken.
VERBS = [
    ("buy", "buys", "買います", {"thing", "reading", "food", "washing", "animal"}),
    ("see", "sees", "見ます", {"thing", "reading", "food", "washing", "animal"}),
    ("eat", "eats", "食べます", {"food"}),
    ("read", "reads", "読みます", {"reading"}),
    ("wash", "washes", "洗います", {"washing", "animal"}),
    ("draw", "draws", "描きます", {"thing", "food", "animal"}),
    ("carry", "carries", "運びます", {"thing", "reading", "food", "washing"}),
]
# Places: english with its preposition, japanese.
PLACES = [
    ("in the park", "公園"), ("at the station", "駅"), ("at school", "学校"), ("in the library", "図書館"),
    ("at the store", "店"), ("in the kitchen", "台所"), ("at the hospital", "病院"), ("in the garden", "庭"),
    ("at the office", "会社"),
]
DESTINATIONS = [
    ("to the park", "公園"), ("to the station", "駅"), ("to school", "学校"), ("to the library", "図書館"),
    ("to the store", "店"), ("to the hospital", "病院"), ("to the office", "会社"), ("home", "家"),
]
# Times: english, japanese tokens (some take に).
TIMES = [
    ("today", "今日"), ("every day", "毎日"), ("every morning", "毎朝"), ("at night", "夜"),
    ("on sunday", "日曜日 に"), ("on saturday", "土曜日 に"), ("in the evening", "夕方"),
]
ADJECTIVES = [
    ("red", "赤い"), ("blue", "青い"), ("white", "白い"), ("black", "黒い"), ("big", "大きい"),
    ("small", "小さい"), ("new", "新しい"), ("old", "古い"), ("cheap", "安い"), ("expensive", "高い"),
]
DEMONSTRATIVES = [("this", "これ"), ("that", "それ")]
# Nouns that can be described ("the cat is small").
THE_NOUNS = [(sg, ja) for sg, _pl, ja, _c, _k in OBJECTS] + [("park", "公園"), ("station", "駅"), ("house", "家")]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _verb(subject, verb, negative=False):
    _en, _ja, third = subject
    base, third_form, ja, _kinds = verb
    if negative:
        return ("does not " if third else "do not ") + base, ja[:-2] + "ません"
    return (third_form if third else base), ja


def _identify(rng):
    """this is a (red) pen .  ->  これ は (赤い) ペン です 。  (and the question form)"""
    dem_en, dem_ja = rng.choice(DEMONSTRATIVES)
    noun, _pl, noun_ja, _c, _k = rng.choice(OBJECTS)
    adjective = rng.choice(ADJECTIVES) if rng.random() < 0.5 else None
    words_en = f"{adjective[0]} {noun}" if adjective else noun
    words_ja = f"{adjective[1]} {noun_ja}" if adjective else noun_ja
    phrase = f"{_article(words_en)} {words_en}"
    if rng.random() < 0.3:
        return f"is {dem_en} {phrase} ?", f"{dem_ja} は {words_ja} です か 。"
    return f"{dem_en} is {phrase} .", f"{dem_ja} は {words_ja} です 。"


def _describe(rng):
    """the cat is small .  ->  猫 は 小さい です 。"""
    noun, noun_ja = rng.choice(THE_NOUNS)
    adjective, adjective_ja = rng.choice(ADJECTIVES)
    owner = rng.choice([("the", ""), ("my", "私 の "), ("your", "あなた の ")])
    return f"{owner[0]} {noun} is {adjective} .", f"{owner[1]}{noun_ja} は {adjective_ja} です 。"


def _act(rng):
    """S V N O [place] [time] .  ->  S は [time] [place で] O を N counter V 。"""
    subject = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    obj = rng.choice([o for o in OBJECTS if o[4] in verb[3]])
    singular, plural, obj_ja, counter, _kind = obj
    number_en, number_ja = rng.choice(NUMBERS)
    negative = rng.random() < 0.15
    verb_en, verb_ja = _verb(subject, verb, negative)
    en, ja = [subject[0], verb_en], [subject[1], "は"]
    if negative:
        en.append(plural)  # "does not eat apples": no number
        tail_ja = [obj_ja, "を", verb_ja]
    else:
        en += [number_en, singular if number_en == "one" else plural]
        tail_ja = [obj_ja, "を", number_ja, counter, verb_ja]
    place = rng.choice(PLACES) if rng.random() < 0.6 else None
    time = rng.choice(TIMES) if rng.random() < 0.6 else None
    if place:
        en.append(place[0])
    if time:
        en.append(time[0])
        ja.append(time[1])
    if place:
        ja += [place[1], "で"]
    return " ".join(en + ["."]), " ".join(ja + tail_ja + ["。"])


def _go(rng):
    """S go(es) to the station [time] .  ->  S は [time] 駅 に 行きます 。"""
    subject = rng.choice(SUBJECTS)
    destination, destination_ja = rng.choice(DESTINATIONS)
    time = rng.choice(TIMES) if rng.random() < 0.7 else None
    verb_en, verb_ja = _verb(subject, ("go", "goes", "行きます", set()), negative=rng.random() < 0.15)
    en = [subject[0], verb_en, destination] + ([time[0]] if time else []) + ["."]
    ja = [subject[1], "は"] + ([time[1]] if time else []) + [destination_ja, "に", verb_ja, "。"]
    return " ".join(en), " ".join(ja)


TEMPLATES = ((_identify, 0.15), (_describe, 0.1), (_act, 0.6), (_go, 0.15))


def split_of(english: str) -> str:
    """The split a sentence belongs to, by a stable hash (so splits never overlap)."""
    return hash_split(english, SPLIT_FRACTIONS)


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """One (english, japanese) pair drawn from the grammar."""
    point, total = rng.random(), 0.0
    for template, weight in TEMPLATES:
        total += weight
        if point < total:
            return template(rng)
    return TEMPLATES[-1][0](rng)


def generate(split: str, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct (english, japanese-tokenised) pairs of ``split``, deterministic in (split, count, seed).

    Raises ValueError if the grammar cannot supply that many distinct sentences.
    """
    if split not in dict(SPLIT_FRACTIONS):
        raise ValueError(f"unknown split {split!r}")
    rng = random.Random(f"phrasebook-{seed}")
    seen, pairs = set(), []
    attempts = 0
    while len(pairs) < count:
        attempts += 1
        if attempts > 200 * count + 10_000:
            raise ValueError(f"phrasebook: could not draw {count} distinct {split} sentences")
        english, japanese = sentence_pair(rng)
        if english in seen or split_of(english) != split:
            continue
        seen.add(english)
        pairs.append((english, japanese))
    return pairs


def detokenize_japanese(tokens: str) -> str:
    """``"これ は ペン です 。"`` -> ``"これはペンです。"``."""
    return "".join(tokens.split())
