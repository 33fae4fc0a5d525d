"""kerasapps.api.split_by_group: whole groups of files held out, named by a file-name prefix."""

import pytest

from kerasapps.api import UsageError, group_of, split_by_group

NAMES = ["seq2_0001", "seq1_0001", "seq2_0002", "seq3_0001", "seq1_0002"]


def test_groups_are_held_out_whole_in_the_order_given():
    kept, held = split_by_group(NAMES, str, ["seq1", "seq3"])
    assert held == ["seq1_0001", "seq3_0001", "seq1_0002"] and kept == ["seq2_0001", "seq2_0002"]
    # Items are anything with a name: the key picks it.
    kept, held = split_by_group([(name, i) for i, name in enumerate(NAMES)], lambda item: item[0], ["seq2"])
    assert held == [("seq2_0001", 0), ("seq2_0002", 2)] and len(kept) == 3


def test_group_pattern_match_or_first_capture_group():
    assert group_of("0016E5_07959") == "0016E5"
    assert group_of("frame.png") == "frame.png"  # no underscore: the whole name
    assert group_of("patient-07-scan3", r"patient-(\d+)") == "07"
    assert group_of("scan3", r"patient-(\d+)") is None
    kept, held = split_by_group(NAMES, str, ["1"], pattern=r"seq(\d)")
    assert held == ["seq1_0001", "seq1_0002"]


def test_mistakes_list_the_groups_there_are():
    with pytest.raises(UsageError, match=r"^holdout: no group named seq9, seq_; the groups \(files\) are: "
                                         r"seq1 \(2\), seq2 \(2\), seq3 \(1\)$"):
        split_by_group(NAMES, str, ["seq1", "seq9", "seq_"], option="holdout")
    with pytest.raises(UsageError, match=r"holding out seq1, seq2, seq3 leaves no group to train on"):
        split_by_group(NAMES, str, ["seq1", "seq2", "seq3"])
    with pytest.raises(UsageError, match=r"'seq2_0001' has no group: the pattern 'x\(\\d\)' does not match"):
        split_by_group(NAMES, str, ["1"], pattern=r"x(\d)")
    with pytest.raises(UsageError, match=r"the group pattern '\(' is not a regular expression"):
        split_by_group(NAMES, str, ["seq1"], pattern="(")
