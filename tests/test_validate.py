"""The shared argument checks: integers in a range, names from a set — what they accept and what they say."""

from __future__ import annotations

import numpy as np
import pytest

from hashviz.errors import InvalidInputError
from hashviz.validate import check_choice, check_int, is_int, unknown_choice


@pytest.mark.parametrize("value", [0, 7, np.int64(7), np.uint8(3), -2])
def test_integers_pass_and_come_back_as_python_ints(value):
    out = check_int(value, "x")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [True, False, 2.0, 2.5, "3", None, np.float32(1), [1]])
def test_non_integers_are_refused_bools_included(value):
    assert not is_int(value)
    with pytest.raises(InvalidInputError) as e:
        check_int(value, "steps", hint="e.g. 10")
    assert e.value.message == f"steps must be an integer, got {value!r}" and e.value.hint == "e.g. 10"


@pytest.mark.parametrize("kwargs, bad, words", [
    ({"lo": 0}, -1, "a non-negative integer"),
    ({"lo": 1}, 0, "a positive integer"),
    ({"lo": 2}, 1, "an integer >= 2"),
    ({"hi": 9}, 10, "an integer <= 9"),
    ({"lo": 1, "hi": 64}, 65, "an integer between 1 and 64"),
    ({"lo": 0, "none": True}, -3, "a non-negative integer or None"),
    ({"lo": 0, "expected": "an integer >= 0"}, -1, "an integer >= 0"),
])
def test_bounds_are_inclusive_and_the_message_says_them(kwargs, bad, words):
    for ok in (kwargs.get("lo"), kwargs.get("hi")):
        if ok is not None:
            assert check_int(ok, "k", **kwargs) == ok
    with pytest.raises(InvalidInputError, match=f"^k must be {words}, got {bad}$"):
        check_int(bad, "k", **kwargs)


def test_none_passes_only_when_allowed():
    assert check_int(None, "epochs", lo=0, none=True) is None
    with pytest.raises(InvalidInputError, match="epochs must be a non-negative integer, got None"):
        check_int(None, "epochs", lo=0)


def test_choices():
    assert check_choice("l1", "HQ loss", ("l2", "l1")) == "l1"
    with pytest.raises(InvalidInputError) as e:
        check_choice("nope", "HQ loss", ("l2", "l1"))
    assert e.value.message == "unknown HQ loss 'nope'" and e.value.hint == "choose one of: l2, l1"
    with pytest.raises(InvalidInputError) as e:
        check_choice("x", "split", {"train": 0, "query": 1}, hint="use train or query")
    assert e.value.hint == "use train or query"
    # values that cannot be compared to a name (arrays, unhashables) are refused, not crashed on
    for odd in (np.array(["l2", "l1"]), ["l2"], {"a": 1}):
        with pytest.raises(InvalidInputError, match="unknown HQ loss"):
            check_choice(odd, "HQ loss", ("l2", "l1"))
    err = unknown_choice("Foo", "dataset", ["mnist5k", "digits"])
    assert isinstance(err, InvalidInputError) and err.message == "unknown dataset 'Foo'"
    assert err.hint == "choose one of: mnist5k, digits"


def test_library_messages_come_from_the_shared_checks():
    from hashviz.data.splits import check_seed
    from hashviz.quantize import HouseholderQuantizer, ITQQuantizer
    from hashviz.retrieval.search import top_k

    X = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    with pytest.raises(InvalidInputError, match="n_iter must be a non-negative integer, got -1"):
        ITQQuantizer(8, n_iter=-1).fit(X)
    with pytest.raises(InvalidInputError, match="steps must be a non-negative integer or None, got True"):
        HouseholderQuantizer(8, steps=True).fit(X)
    with pytest.raises(InvalidInputError, match="n_bits must be an integer between 1 and 4096, got 0"):
        ITQQuantizer(0).fit(X[:, :0])
    with pytest.raises(InvalidInputError, match="seed must be an integer >= 0, got -1"):
        check_seed(-1)
    codes = np.zeros((3, 1), np.uint8)
    with pytest.raises(InvalidInputError, match="k must be a positive integer, got 0"):
        top_k(codes, codes, 0)
