"""Stage configs: stable keys, different configs → different keys, round trips, clear errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from hashviz.config import (
    STAGE_CONFIGS,
    EmbeddingsConfig,
    FeatureConfig,
    HeadConfig,
    PrepareConfig,
    QuantizerConfig,
    config_from_dict,
)
from hashviz.errors import InvalidInputError
from hashviz.store import config_key


def test_key_is_sha256_of_canonical_json():
    cfg = QuantizerConfig(embeddings="abc", embeddings_sha256="0" * 64, name="hq", n_bits=16,
                          options={"random_state": 0})
    text = ('{"embeddings":"abc","embeddings_sha256":"' + "0" * 64 + '","n_bits":16,"name":"hq",'
            '"options":{"random_state":0},"stage":"quantizers","version":2}')
    assert cfg.key() == hashlib.sha256(text.encode()).hexdigest()[:16] == config_key(cfg)
    # pinned: a key must not change between sessions or Python versions, or stored results are lost
    # (version 2: quantizers are keyed by the content hash of the embeddings they were fitted on)
    assert cfg.key() == "9076feeec5bfb591"


@pytest.mark.parametrize("cls", list(STAGE_CONFIGS.values()))
def test_round_trip_and_hash(cls):
    cfg = cls()
    again = cls.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.key() == cfg.key() and hash(again) == hash(cfg)
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["stage"] == cls.stage


def test_different_configs_give_different_keys():
    base = HeadConfig(features="f", n_bits=16)
    variants = [HeadConfig(features="f", n_bits=32), HeadConfig(features="g", n_bits=16),
                HeadConfig(features="f", n_bits=16, seed=1), HeadConfig(features="f", n_bits=16, lr=1e-3),
                HeadConfig(features="f", n_bits=16, hidden=(128,)), HeadConfig(features="f", n_bits=16, method="csq"),
                HeadConfig(features="f", n_bits=16, options={"margin": 0.2})]
    keys = {base.key()} | {v.key() for v in variants}
    assert len(keys) == len(variants) + 1
    # same values spelled differently → same key
    assert HeadConfig(features="f", n_bits=16.0, epochs=10, lr=3e-4, hidden=[256]).key() == base.key()
    assert HeadConfig(features="f", n_bits=16, options={"b": 1, "a": 2}).key() == HeadConfig(
        features="f", n_bits=16, options={"a": 2, "b": 1}).key()
    # the same fields in another stage never collide
    assert EmbeddingsConfig(head="x", n_bits=16).key() != QuantizerConfig(embeddings="x", n_bits=16).key()
    # derived entries are keyed by their input's content: other features / other embeddings → other key
    assert EmbeddingsConfig(head="x", n_bits=16, features_sha256="a").key() != EmbeddingsConfig(
        head="x", n_bits=16, features_sha256="b").key()
    assert QuantizerConfig(embeddings="x", embeddings_sha256="a").key() != QuantizerConfig(
        embeddings="x", embeddings_sha256="b").key()


def test_configs_are_frozen_and_usable_as_dict_keys():
    cfg = PrepareConfig(dataset="digits", dataset_options={"path": "x"})
    with pytest.raises(AttributeError):
        cfg.dataset = "mnist5k"  # type: ignore[misc]
    assert {cfg: 1}[PrepareConfig(dataset="digits", dataset_options={"path": "x"})] == 1


def test_train_kwargs():
    cfg = HeadConfig(features="f", n_bits=32, epochs=3, options={"margin": 0.2})
    kw = cfg.train_kwargs()
    assert kw["n_bits"] == 32 and kw["epochs"] == 3 and kw["options"] == {"margin": 0.2} and kw["method"] == "cel"


def test_errors():
    with pytest.raises(InvalidInputError, match="integer"):
        HeadConfig(n_bits=16.5)
    with pytest.raises(InvalidInputError, match="no field"):
        FeatureConfig.from_dict({"dataset": "x", "colour": "red"})
    with pytest.raises(InvalidInputError, match="version"):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "version": 99})
    with pytest.raises(InvalidInputError, match="not a"):
        FeatureConfig.from_dict(PrepareConfig().to_dict())
    with pytest.raises(InvalidInputError, match="unknown stage"):
        config_from_dict({"stage": "nope"})
    with pytest.raises(InvalidInputError, match="mapping"):
        QuantizerConfig(options=[1, 2])


def test_prepare_config_lists_its_code_lengths_as_bit_lengths():
    cfg = PrepareConfig(bit_lengths=[32, 16])
    d = cfg.to_dict()
    assert d["bit_lengths"] == [32, 16] and "bits" not in d and PrepareConfig.from_dict(d) == cfg
    assert PrepareConfig(bit_lengths=(16,)).key() != PrepareConfig(bit_lengths=(32,)).key()
    # an older version's spelling is refused with a message, not a traceback (its prepared record is a cache miss)
    old = {("bits" if k == "bit_lengths" else k): v for k, v in d.items()}
    with pytest.raises(InvalidInputError, match="PrepareConfig has no field bits"):
        config_from_dict(old)
