"""One contract test over all quantizers (DESIGN.md §3), plus the random rotation's own checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.codes import encode, unpack_bits
from hashviz.errors import HashvizError, InvalidInputError, NotFittedError
from hashviz.quantize import (
    QUANTIZERS,
    FitStep,
    HouseholderQuantizer,
    ITQQuantizer,
    Quantizer,
    RandomRotationQuantizer,
    RandomSearchQuantizer,
    SignQuantizer,
    make_quantizer,
)

N_BITS = 16
# small budgets keep the suite fast; every quantizer still takes several steps
FAST = {"sign": {}, "itq": {"n_iter": 8}, "hq": {"steps": 12}, "random": {"steps": 12}, "rr": {}}


def make(name, **kw):
    return make_quantizer(name, N_BITS, **(FAST[name] | kw))


def fit_args(name, data):
    X, y = data
    return (X, y) if name == "random" else (X,)


@pytest.fixture(params=list(QUANTIZERS))
def name(request):
    return request.param


def test_registry_and_protocol():
    assert set(QUANTIZERS) == {"sign", "itq", "hq", "random", "rr"}
    assert QUANTIZERS["sign"] is SignQuantizer and QUANTIZERS["itq"] is ITQQuantizer
    assert QUANTIZERS["hq"] is HouseholderQuantizer and QUANTIZERS["random"] is RandomSearchQuantizer
    assert QUANTIZERS["rr"] is RandomRotationQuantizer
    for cls in QUANTIZERS.values():
        assert isinstance(cls(8), Quantizer)


def test_fit_transform_encode_shapes(name, labelled):
    X, y = labelled
    q = make(name)
    assert q.fit(*fit_args(name, labelled)) is q
    Z = q.transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape
    codes = q.encode(X)
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 2)
    np.testing.assert_array_equal(codes, encode(Z))
    # transform is (X - mean_) @ rotation_, not rescaled
    np.testing.assert_allclose(Z, (X - q.mean_) @ q.rotation_, rtol=1e-4, atol=1e-4)
    assert q.mean_.shape == (N_BITS,) and not q.mean_.any()
    # bits of a single row equal the row's signs after rotation
    np.testing.assert_array_equal(unpack_bits(codes, N_BITS), Z >= 0)


def test_rotation_orthogonal_after_every_step(name, labelled):
    q = make(name)
    it = q.fit_steps(*fit_args(name, labelled))
    R0 = q.rotation_                                  # valid before the first step too
    assert np.abs(R0.T @ R0 - np.eye(N_BITS)).max() < 1e-5
    steps = []
    for s in it:
        assert isinstance(s, FitStep)
        assert np.isfinite(s.loss) and np.isfinite(s.quantization_error) and s.quantization_error >= 0
        R = q.rotation_
        assert R.shape == (N_BITS, N_BITS)
        assert np.abs(R.T @ R - np.eye(N_BITS)).max() < 1e-5
        steps.append(s)
    assert len(steps) >= 1
    assert [s.step for s in steps] == list(range(steps[0].step, steps[0].step + len(steps)))
    assert all(b.epoch >= a.epoch for a, b in itertools.pairwise(steps))


def test_number_of_steps():
    X = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    y = np.arange(100) % 3
    assert len(list(SignQuantizer(8).fit_steps(X))) == 1
    assert len(list(ITQQuantizer(8, n_iter=7).fit_steps(X))) == 7
    assert len(list(HouseholderQuantizer(8, steps=9).fit_steps(X))) == 9
    assert len(list(HouseholderQuantizer(8, schedule="paper", epochs=2, batch_size=32).fit_steps(X))) == 2 * 4
    assert len(list(RandomSearchQuantizer(8, steps=5).fit_steps(X, y))) == 5
    assert len(list(RandomRotationQuantizer(8).fit_steps(X))) == 1


def test_same_seed_same_codes(name, labelled):
    X, _ = labelled
    a = make(name, random_state=7).fit(*fit_args(name, labelled))
    b = make(name, random_state=7).fit(*fit_args(name, labelled))
    np.testing.assert_array_equal(a.rotation_, b.rotation_)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))


@pytest.mark.parametrize("name,options", [("itq", {"n_iter": 3}), ("random", {"steps": 12}), ("rr", {}),
                                          ("hq", {"schedule": "paper", "epochs": 1, "batch_size": 32})])
def test_different_seed_changes_randomised_fits(name, options, labelled):
    a = make_quantizer(name, N_BITS, random_state=1, **options).fit(*fit_args(name, labelled))
    b = make_quantizer(name, N_BITS, random_state=2, **options).fit(*fit_args(name, labelled))
    assert not np.allclose(a.rotation_, b.rotation_)


def test_stopping_early_leaves_a_usable_quantizer(name, labelled):
    X, _ = labelled
    q = make(name)
    seen = None
    for s in q.fit_steps(*fit_args(name, labelled)):
        seen = (s, q.rotation_.copy())
        break                                             # a Stop button after the first step
    s, R = seen
    np.testing.assert_array_equal(q.rotation_, R)       # the rotation of the last yield stays
    assert np.abs(R.T @ R - np.eye(N_BITS)).max() < 1e-5
    codes = q.encode(X)
    np.testing.assert_array_equal(codes, encode(X @ R.astype(np.float32)))


def test_transform_before_fit(name):
    q = make(name)
    X = np.zeros((3, N_BITS), np.float32)
    for call in (q.transform, q.encode):
        with pytest.raises(NotFittedError, match="not fitted"):
            call(X)
    assert not hasattr(q, "rotation_")


def _bad_inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, N_BITS)).astype(np.float32)
    nan = X.copy()
    nan[3, 2] = np.nan
    inf = X.copy()
    inf[0, 0] = np.inf
    return [
        ("nan", nan, "NaN"),
        ("inf", inf, "NaN or infinite"),
        ("wrong width", X[:, :10], "10 columns but this quantizer has n_bits=16"),
        ("one row", X[:1], "1 rows; fitting needs at least 2"),
        ("no rows", X[:0], "0 rows"),
        ("1-D", X[0], "must be 2-D"),
        ("3-D", X[None], "must be 2-D"),
        ("strings", np.array([["a"] * N_BITS] * 3), "must hold numbers"),
    ]


@pytest.mark.parametrize("case,X,message", _bad_inputs(), ids=[c[0] for c in _bad_inputs()])
def test_bad_input_is_a_clear_error(name, case, X, message):
    q = make(name)
    y = np.arange(len(X)) % 3 if np.ndim(X) >= 1 else None
    with pytest.raises(HashvizError, match=message) as err:
        q.fit_steps(X, y)                                  # raised at the call, before any step
    assert isinstance(err.value, InvalidInputError) and err.value.hint
    with pytest.raises(InvalidInputError):
        q.fit(X, y)


def test_n_bits_mismatch_after_fit(name, labelled):
    q = make(name).fit(*fit_args(name, labelled))
    with pytest.raises(InvalidInputError, match="n_bits=16"):
        q.transform(np.zeros((4, 8), np.float32))
    with pytest.raises(InvalidInputError, match="NaN"):
        q.encode(np.full((2, N_BITS), np.nan, np.float32))


@pytest.mark.parametrize("n_bits", [0, -3, 2.5, "16", True])
def test_invalid_n_bits(name, n_bits):
    X = np.ones((5, 4), np.float32)
    q = make_quantizer(name, n_bits)                     # __init__ only stores
    with pytest.raises(InvalidInputError, match="n_bits"):
        q.fit(X, np.arange(5))


def test_init_only_stores_arguments():
    q = HouseholderQuantizer(16, loss="nope", lr=-1, schedule="slow")       # no error yet
    assert q.get_params() == {"n_bits": 16, "loss": "nope", "lr": -1, "batch_size": None, "epochs": None,
                              "steps": None, "schedule": "slow", "preprocess": "sphere", "random_state": 0}
    with pytest.raises(InvalidInputError, match="unknown HQ loss 'nope'"):
        q.fit(np.ones((4, 16), np.float32))
    assert [k for k in vars(HouseholderQuantizer(4).fit(np.eye(4, dtype=np.float32))) if k.endswith("_")]


def test_params_and_provenance(name):
    q = make(name, random_state=3)
    params = q.get_params()
    assert params["n_bits"] == N_BITS and params["random_state"] == 3
    d = q.to_dict()
    assert d["quantizer"] == name and d["params"] == params
    clone = type(q)(**params)
    assert clone.get_params() == params
    assert repr(q).startswith(type(q).__name__ + "(n_bits=16")


def test_make_quantizer_errors():
    with pytest.raises(InvalidInputError, match="unknown quantizer 'pca'") as err:
        make_quantizer("pca", 16)
    assert "sign, itq, hq, random" in err.value.hint
    with pytest.raises(InvalidInputError, match="no option 'loss'") as err:
        make_quantizer("itq", 16, loss="l2")
    assert "n_iter" in err.value.hint
    q = make_quantizer("hq", 32, loss="l1", steps=5)
    assert isinstance(q, HouseholderQuantizer) and q.loss == "l1" and q.n_bits == 32


def test_set_rotation_and_refit_resets(labelled):
    X, _ = labelled
    R = ITQQuantizer(N_BITS, n_iter=3).fit(X).rotation_
    for cls in (SignQuantizer, HouseholderQuantizer):
        q = cls(N_BITS).set_rotation(R)
        np.testing.assert_array_equal(q.encode(X), encode(X @ R.astype(np.float32)))
    with pytest.raises(InvalidInputError, match="not orthogonal"):
        SignQuantizer(N_BITS).set_rotation(R * 1.01)


def test_codes_do_not_depend_on_preprocess(labelled):
    X, _ = labelled
    # rescaling rows by a positive factor changes no sign: fitting on X or on 3 * X gives the same codes
    a = ITQQuantizer(N_BITS, n_iter=5, preprocess="sphere").fit(X)
    b = ITQQuantizer(N_BITS, n_iter=5, preprocess="sphere").fit(3 * X)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    np.testing.assert_array_equal(a.encode(X), a.encode(5 * X))
    with pytest.raises(InvalidInputError, match="preprocess"):
        ITQQuantizer(N_BITS, preprocess="unit").fit(X)


def test_random_rotation_is_haar_distributed_and_ignores_the_data(labelled):
    """R does not depend on X (only on the seed), and over many seeds its entries have the moments of a
    Haar-random orthogonal matrix: E[R_ij] = 0, E[R_ij^2] = 1/n; the diagonal is not biased to one sign
    (the sign fix of the QR draw — without it the diagonal of Q from Householder QR leans negative)."""
    X, _ = labelled
    a = RandomRotationQuantizer(N_BITS, random_state=5).fit(X)
    b = RandomRotationQuantizer(N_BITS, random_state=5).fit(3 * X[::-1] + 1)
    np.testing.assert_array_equal(a.rotation_, b.rotation_)
    np.testing.assert_array_equal(a.encode(X), encode(X @ a.rotation_.astype(np.float32)))
    n, draws = 4, 3000
    R = np.stack([RandomRotationQuantizer(n, random_state=s).fit(np.eye(n, dtype=np.float32)).rotation_
                  for s in range(draws)])
    se = np.sqrt(1.0 / n / draws)                      # standard error of a mean of entries with variance 1/n
    assert np.abs(R.mean(axis=0)).max() < 5 * se
    np.testing.assert_allclose((R ** 2).mean(axis=0), 1.0 / n, atol=0.03)
    assert abs(np.mean(np.diagonal(R, axis1=1, axis2=2))) < 5 * se
