"""The MLP search space: size, text form, numbering, random moves."""

import itertools

import numpy as np
import pytest

from trails.config import load_config
from trails.space import DEFAULT_WIDTHS, SearchSpace

TINY = SearchSpace(layers=3, widths=(8, 16, 32))


def test_default_space_has_20_to_the_4_archs():
    space = SearchSpace()
    assert space.layers == 4 and space.widths == DEFAULT_WIDTHS
    assert space.size == 160_000
    assert TINY.size == 27


def test_from_config_reads_layers_widths_and_large_widths():
    config = load_config()
    space = SearchSpace.from_config(config)
    assert space.layers == config.getint("space", "layers")
    assert list(space.widths) == config.get_int_list("space", "widths")
    large = SearchSpace.from_config(config, large=True)
    assert list(large.widths) == config.get_int_list("space", "large_widths")


def test_encode_and_decode_round_trip():
    space = SearchSpace()
    assert space.encode((8, 16, 32, 64)) == "8-16-32-64"
    assert space.decode("8-16-32-64") == (8, 16, 32, 64)
    assert space.decode(" 512-8-8-384 ") == (512, 8, 8, 384)


@pytest.mark.parametrize("text", ["8-16-32", "8-16-32-64-8", "8-17-32-64", "a-b-c-d", "", "8--32-64"])
def test_decode_rejects_bad_text_naming_the_valid_widths(text):
    with pytest.raises(ValueError) as error:
        SearchSpace().decode(text)
    message = str(error.value)
    if "layers" not in message:
        assert "valid widths: 8, 16, 24" in message


def test_encode_rejects_an_arch_outside_the_space():
    with pytest.raises(ValueError, match="valid widths"):
        SearchSpace().encode((8, 16, 33, 64))
    with pytest.raises(ValueError, match="layers"):
        SearchSpace().encode((8, 16))


@pytest.mark.parametrize("layers, widths", [(0, (8,)), (2, ()), (2, (8, 8)), (2, (0, 8))])
def test_bad_space_definitions_are_rejected(layers, widths):
    with pytest.raises(ValueError):
        SearchSpace(layers, widths)


def test_enumerate_is_lexicographic_over_width_indices_and_matches_arch_at():
    enumerated = list(TINY.enumerate())
    expected = [tuple(TINY.widths[i] for i in digits) for digits in itertools.product(range(3), repeat=3)]
    assert enumerated == expected
    assert [TINY.arch_at(i) for i in range(TINY.size)] == enumerated
    assert [TINY.index_of(arch) for arch in enumerated] == list(range(TINY.size))


def test_index_of_and_arch_at_are_inverse_on_the_default_space():
    space = SearchSpace()
    rng = np.random.default_rng(0)
    for index in [0, 1, 19, 20, 159_999, *rng.integers(0, space.size, 50)]:
        assert space.index_of(space.arch_at(int(index))) == index
    assert space.arch_at(0) == (8, 8, 8, 8)
    assert space.arch_at(1) == (8, 8, 8, 16)
    assert space.arch_at(space.size - 1) == (512, 512, 512, 512)
    with pytest.raises(ValueError):
        space.arch_at(space.size)
    with pytest.raises(ValueError):
        space.arch_at(-1)


def test_sample_draws_archs_of_the_space_covering_all_widths():
    rng = np.random.default_rng(1)
    samples = [TINY.sample(rng) for _ in range(300)]
    assert all(TINY.validate(arch) == arch for arch in samples)
    assert len(set(samples)) == TINY.size


def test_mutate_changes_exactly_one_layer_to_another_width():
    space = SearchSpace()
    rng = np.random.default_rng(2)
    arch = (8, 16, 32, 64)
    layers_changed = set()
    for _ in range(200):
        child = space.mutate(arch, rng)
        changed = [layer for layer in range(4) if child[layer] != arch[layer]]
        assert len(changed) == 1
        assert child[changed[0]] in space.widths
        layers_changed.add(changed[0])
    assert layers_changed == {0, 1, 2, 3}


def test_mutate_needs_two_widths():
    with pytest.raises(ValueError):
        SearchSpace(2, (8,)).mutate((8, 8), np.random.default_rng(0))
