"""The column reader's codes give the ids of a dict lookup of each value's text, bit for bit."""

import numpy as np
import pytest

from trails.data.codes import HashCodes, NumberCodes, SeparatorInValues, TextCodes


def _expected(values, dictionary, first, missing, unknown):
    lookup = {v: first + j for j, v in enumerate(dictionary)}
    return np.array([missing if v in ("", None) else lookup.get(v, unknown) for v in values], dtype=np.int64)


@pytest.mark.parametrize("dictionary", [["a", "bb", "ccc"], ["x" * n for n in range(1, 30)],
                                        ["short", "é" * 40], ["y" * 70, "z"], []])
def test_text_codes_match_a_dict_lookup(dictionary):
    rng = np.random.default_rng(0)
    pool = dictionary + ["", "unknown", "a" * 200, "bb\n", "ccc" + "x" * 60, "é"]
    values = [pool[i] for i in rng.integers(0, len(pool), 5000)]
    codes = TextCodes(dictionary, range(10, 10 + len(dictionary)), 7, 8)
    for separator in (0x00, 0x1F):
        joined = bytes([separator]).join(v.encode() for v in values)
        assert np.array_equal(codes.ids(joined, len(values), separator), _expected(values, dictionary, 10, 7, 8))
    assert np.array_equal(codes.ids("\x1f".join(values), len(values), 0x1F), _expected(values, dictionary, 10, 7, 8))


def test_text_codes_refuse_a_buffer_that_does_not_split():
    codes = TextCodes(["a"], [0], 1, 2)
    with pytest.raises(SeparatorInValues):
        codes.ids("a\x1fa\x1fa", 2, 0x1F)
    with pytest.raises(ValueError):
        codes.ids("a\x1fa", 3, 0x1F)
    assert codes.ids(None, 0).shape == (0,)
    assert codes.ids(b"", 1).tolist() == [1]


def test_number_codes_match_the_text_of_integers():
    codes = NumberCodes(["-2", "0", "7"], [3, 4, 5], 9, 10)
    x = np.array([7, -2, np.nan, 1, 0, 2**31 - 1], dtype=np.float64)
    assert codes.ids(x).tolist() == [5, 3, 9, 10, 4, 10]


def test_hash_codes_know_every_label_of_the_type():
    hashes = {"red": 11, "green": -5, "blue": 3, "violet": 40}
    codes = HashCodes(["red", "green", "blue"], [0, 1, 2], 6, 7, hashes, 0)
    assert codes.ids(np.array([3, 0, 40, 11, -5, 99], dtype=np.int32)).tolist() == [2, 6, 7, 0, 1, 7]
    with pytest.raises(ValueError):
        HashCodes(["a", "b"], [0, 1], 2, 3, {"a": 1, "b": 1}, 0)
    with pytest.raises(ValueError):
        HashCodes(["a"], [0], 2, 3, {"a": 0}, 0)


@pytest.mark.parametrize("size", [0, 1, 7, 4082, 100_000])
def test_key_table_finds_every_key_and_nothing_else(size):
    from trails.data.codes import KeyTable

    rng = np.random.default_rng(size)
    keys = np.unique(rng.integers(0, 2**63, size * 2, dtype=np.int64))[:size].view(np.uint64)
    if size > 10:
        keys[:5] = [0, 1, 2, 3, 2**64 - 1]  # clustered keys next to each other
        keys = np.unique(keys)
    table = KeyTable(keys, np.arange(len(keys)) * 3, -1)
    probe = np.concatenate([keys, rng.integers(0, 2**63, 1000, dtype=np.int64).view(np.uint64)])
    expected = {int(k): 3 * j for j, k in enumerate(keys)}
    assert table.lookup(probe).tolist() == [expected.get(int(k), -1) for k in probe]
