"""Weights files that load but are wrong, and the wording of weights errors (issue 9 §5): NaN weights,
integer-cast weights, truncated files; messages name the file as the user knows it and never repeat torch's
advice to load with weights_only=False."""

from __future__ import annotations

import io

import pytest
import torch

from hashviz.errors import DataUnavailableError, InvalidInputError
from hashviz.features.backbones import MnistCNN, get_backbone
from tests.data.fakes import MarkerPayload


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return MnistCNN().state_dict()


def _refused(path, needle: str, *, label: str | None = None, error=InvalidInputError) -> str:
    with pytest.raises(error) as e:
        get_backbone("mnist_cnn", weights=path, label=label).load_model()
    text = f"{e.value.message}\n{e.value.hint}"
    assert needle in e.value.message, e.value.message
    assert "weights_only=False" not in text and "weights_only` set to `False" not in text
    assert "Traceback" not in text
    return text


def test_nan_weights_are_refused_when_loading_not_after_the_features(tmp_path):
    state = _state()
    state["body.0.weight"][0, 0, 0, 0] = float("nan")
    state["classifier.bias"][3] = float("inf")
    torch.save(state, tmp_path / "nan.pt")
    text = _refused(tmp_path / "nan.pt", "has NaN or infinite values in 2 floating-point weight tensors "
                                         "(body.0.weight, classifier.bias)")
    assert "recompute the backbone features" not in text  # the old, misleading hint (from head training)


def test_integer_cast_weights_are_refused_instead_of_giving_chance_map(tmp_path):
    state = _state()
    n_float = sum(v.is_floating_point() for v in state.values())  # weights, biases, BatchNorm statistics
    state = {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, tmp_path / "int.pt")
    text = _refused(tmp_path / "int.pt", f"stores {n_float} floating-point weight tensors as integers or booleans "
                                         "(body.0.weight int64, body.0.bias int64")
    assert "round every weight" in text and "without casting" in text


def test_half_precision_weights_still_load(tmp_path):
    state = {k: v.half() if v.is_floating_point() else v for k, v in _state().items()}
    torch.save(state, tmp_path / "half.pt")
    model = get_backbone("mnist_cnn", weights=tmp_path / "half.pt").load_model()
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 128)


@pytest.mark.parametrize("cut", ["half", "empty", "text"])
def test_truncated_or_foreign_files(tmp_path, cut):
    buf = io.BytesIO()
    torch.save(_state(), buf)
    data = {"half": buf.getvalue()[: len(buf.getvalue()) // 2], "empty": b"", "text": b"hello world"}[cut]
    (tmp_path / "w.pt").write_bytes(data)
    _refused(tmp_path / "w.pt", "is not a readable PyTorch weights file")


def test_messages_name_the_upload_not_where_the_app_saved_it(tmp_path):
    internal = tmp_path / "app" / "uploads" / "3f2a9c0d1e2b4a5c.pt"
    internal.parent.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save(_state(), buf)
    internal.write_bytes(buf.getvalue()[:100])
    text = _refused(internal, "my_weights.pt is not a readable PyTorch weights file", label="my_weights.pt")
    assert str(internal.parent) not in text and internal.name not in text
    state = _state()
    state["classifier.weight"] = torch.zeros(5, 128)
    torch.save(state, internal)
    text = _refused(internal, "my_weights.pt does not fit the mnist_cnn architecture", label="my_weights.pt")
    assert str(internal.parent) not in text
    internal.unlink()
    with pytest.raises(DataUnavailableError) as e:
        get_backbone("mnist_cnn", weights=internal, label="my_weights.pt").load_model()
    assert e.value.message == "weights file not found: my_weights.pt"
    assert get_backbone("mnist_cnn", weights=internal, label="my_weights.pt").weights_source == \
        "user file my_weights.pt"


def test_code_in_a_pickle_is_refused_without_torchs_advice(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"body.0.weight": MarkerPayload(marker)}, tmp_path / "evil.pt")
    text = _refused(tmp_path / "evil.pt", "evil.pt was refused: it holds Python objects besides tensors")
    assert "weights_only=True" in text and "never runs code" in text
    assert "do those steps only if you trust" not in text  # torch's own message is not passed on
    assert not marker.exists()


def test_unusual_key_names_are_not_quoted(tmp_path):
    state = _state()
    state["<img src=x onerror=alert(1)>"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.pt")
    text = _refused(tmp_path / "keys.pt", "unexpected keys: (a key with unusual characters)")
    assert "onerror" not in text
