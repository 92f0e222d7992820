"""Frozen configs, one per pipeline stage; each knows its store stage name and its key.

``key()`` is :func:`hashviz.jsonable.config_key` of ``to_dict()`` — the first 16 hex digits of the SHA-256 of the
canonical JSON (sorted keys, tuples as lists) — and ``to_dict()`` includes the stage's ``version``, so changing
how a stage computes its result (bumping ``version``) gives new keys and old entries are simply not found.
Configs refer to their inputs by the inputs' keys, so a key pins down the whole chain that produced a result.

Stages (store folder ← config):
    features    ← FeatureConfig      (dataset fingerprint + split seed + backbone + weights SHA-256)
    heads       ← HeadConfig         (features key + head method + training settings + n_bits + seed)
    embeddings  ← EmbeddingsConfig   (head key + SHA-256 of the features it embedded, or an embeddings file's
                                      content fingerprint)
    quantizers  ← QuantizerConfig    (embeddings key + SHA-256 of the embeddings file + quantizer name + options)
    prepared    ← PrepareConfig      (everything the user chose in ``prepare``)

Derived entries are keyed by their input's *content*, not only its config: if the features or the embeddings
behind a result change (a replaced cache, another writer), the old result is simply not found and is recomputed,
instead of being reported for inputs it was not computed from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from hashviz.errors import InvalidInputError
from hashviz.jsonable import config_key, to_jsonable
from hashviz.validate import check_choice


def _frozen_mapping(value: Mapping | None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"options must be a mapping, got {type(value).__name__}", "pass a dict of options")
    return to_jsonable(dict(value))


class StageConfig:
    """Shared behaviour: ``to_dict``/``from_dict`` round trip, ``key()``, hashing by key."""

    stage: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if f.type == "Mapping" or isinstance(v, Mapping):
                object.__setattr__(self, f.name, _frozen_mapping(v))
            elif f.type in ("int", "float") and isinstance(v, int | float) and not isinstance(v, bool):
                # 10 and 10.0 must give the same key; an int field holding 2.5 is an error
                if f.type == "int" and float(v) != int(v):
                    raise InvalidInputError(f"{f.name} must be an integer, got {v!r}", "")
                object.__setattr__(self, f.name, int(v) if f.type == "int" else float(v))
            elif isinstance(v, list | tuple):
                object.__setattr__(self, f.name, tuple(to_jsonable(list(v))))

    def to_dict(self) -> dict:
        d = {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]
        d["stage"] = self.stage
        d["version"] = self.version
        return d

    @classmethod
    def from_dict(cls, data: Mapping) -> Self:
        data = dict(data)
        stage, version = data.pop("stage", cls.stage), data.pop("version", cls.version)
        if stage != cls.stage:
            raise InvalidInputError(f"a {stage!r} config is not a {cls.stage!r} config", "")
        if version != cls.version:
            raise InvalidInputError(f"{cls.stage} config version {version} is not {cls.version}",
                                    "the result was made by another hashviz version: recompute it")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"{cls.__name__} has no field {', '.join(unknown)}", f"fields: {sorted(names)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def key(self) -> str:
        return config_key(self.to_dict())

    def __hash__(self) -> int:
        return hash(self.key())


@dataclass(frozen=True, eq=True)
class FeatureConfig(StageConfig):
    """Backbone features of one dataset (its fingerprint and split seed) under one backbone's weights."""

    stage: ClassVar[str] = "features"
    dataset: str = "mnist5k"
    fingerprint: str = ""
    seed: int = 0
    backbone: str = "mnist_cnn"
    weights_sha256: str = ""
    __hash__ = StageConfig.__hash__


@dataclass(frozen=True, eq=True)
class HeadConfig(StageConfig):
    """One hashing head: method, bit length, training settings, seed, on the features ``features``."""

    stage: ClassVar[str] = "heads"
    features: str = ""
    method: str = "cel"
    n_bits: int = 32
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 1e-4
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.1
    seed: int = 0
    options: Mapping = field(default_factory=dict)
    train_rows: str = ""  # digest of the train rows and their labels: a split option that changes them gives a new head
    __hash__ = StageConfig.__hash__

    def train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`hashviz.heads.train.fit_head_steps`."""
        return {"method": self.method, "n_bits": self.n_bits, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "weight_decay": self.weight_decay, "hidden": tuple(self.hidden),
                "dropout": self.dropout, "seed": self.seed, "options": dict(self.options)}


@dataclass(frozen=True, eq=True)
class EmbeddingsConfig(StageConfig):
    """Continuous embeddings: the output of head ``head`` (a heads key) on the features whose content hash is
    ``features_sha256``, or an embeddings file (``source``, which holds the file's content fingerprint)."""

    stage: ClassVar[str] = "embeddings"
    version: ClassVar[int] = 2
    head: str = ""
    source: str = ""
    n_bits: int = 0
    features_sha256: str = ""
    __hash__ = StageConfig.__hash__


@dataclass(frozen=True, eq=True)
class QuantizerConfig(StageConfig):
    """One quantizer fitted on the train split of the embeddings ``embeddings`` (an embeddings key) whose file has
    the SHA-256 ``embeddings_sha256`` (as the embeddings entry's status records it)."""

    stage: ClassVar[str] = "quantizers"
    version: ClassVar[int] = 2
    embeddings: str = ""
    embeddings_sha256: str = ""
    name: str = "hq"
    n_bits: int = 32
    options: Mapping = field(default_factory=dict)
    __hash__ = StageConfig.__hash__


@dataclass(frozen=True, eq=True)
class PrepareConfig(StageConfig):
    """Everything ``prepare`` was asked for; its entry lists the runs (one per bit length) it produced."""

    stage: ClassVar[str] = "prepared"
    dataset: str = "mnist5k"
    dataset_options: Mapping = field(default_factory=dict)
    fingerprint: str = ""
    seed: int = 0
    backbone: str = "mnist_cnn"
    weights_sha256: str = ""
    head: str = "cel"
    head_options: Mapping = field(default_factory=dict)
    bit_lengths: tuple[int, ...] = (16, 32, 48, 64)
    quantizers: tuple[str, ...] = ("sign", "itq", "hq")
    __hash__ = StageConfig.__hash__


STAGE_CONFIGS: dict[str, type[StageConfig]] = {c.stage: c for c in (
    FeatureConfig, HeadConfig, EmbeddingsConfig, QuantizerConfig, PrepareConfig)}


def config_from_dict(data: Mapping) -> StageConfig:
    """Rebuild the right config class from a ``to_dict()`` (e.g. a stored ``config.json``)."""
    stage = data.get("stage")
    check_choice(stage, "stage", STAGE_CONFIGS, hint=f"a stored config names one of the stages "
                 f"{', '.join(STAGE_CONFIGS)}")
    return STAGE_CONFIGS[stage].from_dict(data)
