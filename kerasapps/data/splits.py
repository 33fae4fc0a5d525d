"""Stable splits of a dataset that has none: by a hash of each item's key, or by whole groups.

A split that depends only on an item's name is the same on every machine and run, so a resumed
or repeated run trains and validates on the same items.

Example::

    splits = split_by_hash(files, key=lambda path: path.name)          # 80/10/10 by name
    kept, held = split_by_group(files, lambda path: path.stem, ["seq07"])  # whole recordings out
"""

from __future__ import annotations

import collections
import hashlib
import re

from kerasapps.errors import UsageError


def hash_split(key: str, fractions=(("train", 0.8), ("validation", 0.1), ("test", 0.1))) -> str:
    """Assign ``key`` (e.g. a relative file path) to a split, stably across runs and machines.

    Returns the name of the split (one of ``fractions``' names) that ``key`` falls in.
    """
    point = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64
    total = 0.0
    for split, fraction in fractions:
        total += fraction
        if point < total:
            return split
    return fractions[-1][0]


def split_by_hash(items, key, fractions=(("train", 0.8), ("validation", 0.1), ("test", 0.1))) -> dict[str, list]:
    """``{split: items}``, each item placed by :func:`hash_split` of ``key(item)``
    (a file name, say): the same split on every machine and run, 80/10/10 by default.

    Returns ``{split: [items]}`` with every name of ``fractions`` as a key, items in the order given.
    """
    splits = {split: [] for split, _ in fractions}
    for item in items:
        splits[hash_split(key(item), fractions)].append(item)
    return splits


GROUP_PATTERN = r"[^_]+"  # the name up to its first underscore


def group_of(name: str, pattern: str = GROUP_PATTERN) -> str | None:
    """The group ``name`` belongs to: the match of ``pattern`` at its start (its first capture
    group, if it has one); None when the pattern does not match there.

    Returns the group's name, or None.
    """
    match = re.match(pattern, name)
    group = match and match.group(1 if match.re.groups else 0)
    return group or None


def split_by_group(items, key, held_out, pattern: str = GROUP_PATTERN, option: str = "held-out groups"):
    """``(kept, held)``: ``items`` split by whole groups, the items of the groups named in
    ``held_out`` in ``held`` and all others in ``kept``, each in the order given (so the split
    is the same on every run). An item's group is :func:`group_of` its ``key`` (a file name, say).

    Returns ``(kept, held)``, two lists of the items.

    For data whose neighbours are near-duplicates (frames of one recording, scans of one
    patient), a random split puts near-copies of the validation items in training; holding
    out whole groups measures what a new group gets. A name in ``held_out`` that no item's group
    has, holding out every group, a key the pattern does not match or a pattern that is no
    regular expression is a UsageError (``option`` names the setting) that lists the groups there are.

    Example::

        kept, held = split_by_group(files, lambda path: path.stem, ["seq07"])
        # seq07_0001.png, seq07_0002.png, ... are held out; seq01_*, seq02_*, ... kept
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{option}: the group pattern '{pattern}' is not a regular expression ({exc})") from None
    items = list(items)
    groups = []
    for item in items:
        group = group_of(key(item), pattern)
        if group is None:
            raise UsageError(f"{option}: {key(item)!r} has no group: the pattern '{pattern}' does not match "
                             "at the start of its name")
        groups.append(group)
    sizes = collections.Counter(groups)
    listing = ", ".join(f"{group} ({count})" for group, count in sorted(sizes.items()))
    unknown = [name for name in held_out if name not in sizes]
    if unknown:
        raise UsageError(f"{option}: no group named {', '.join(unknown)}; the groups (files) are: {listing}")
    if set(held_out) >= set(sizes):
        raise UsageError(f"{option}: holding out {', '.join(held_out)} leaves no group to train on; "
                         f"the groups (files) are: {listing}")
    held_set = set(held_out)
    kept = [item for item, group in zip(items, groups) if group not in held_set]
    held = [item for item, group in zip(items, groups) if group in held_set]
    return kept, held
