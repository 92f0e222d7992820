"""The prepare form on Data & model adapts to the dataset: compatible backbones only, the choice resets when the
dataset changes, and Prepare is disabled with the reason while the data or the weights are missing."""

from __future__ import annotations

import pytest
import torch

from tests.app.conftest import open_app, problems
from tests.data.fakes import write_cifar10


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache at $TORCH_HOME/hub (no ImageNet weights, as on this machine)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def offered(at, dataset):
    return [o.split(" — ")[0] for o in at.selectbox(key=f"hv_bb_{dataset}").options]


def blocked(at) -> str:
    """The reason Prepare is disabled ("" when it is enabled), checked against the button's state."""
    text = " ".join(w.value for w in at.warning if w.value.startswith("Prepare is disabled"))
    assert at.button(key="hv_prepare").disabled == bool(text)
    return text


def test_backbones_and_prepare_button_follow_the_dataset(fresh, hub, tmp_path):
    import torchvision

    at = open_app("pages/1_data.py")
    assert problems(at) == []
    assert offered(at, "mnist5k")[0] == "mnist_cnn" and at.selectbox(key="hv_bb_mnist5k").value == "mnist_cnn"
    assert blocked(at) == ""  # mnist5k and the bundled CNN are on disk

    at.selectbox(key="hv_bb_mnist5k").set_value("resnet18").run()
    assert "weights not on disk" in blocked(at) and "resnet18-f37072fd.pth" in blocked(at)

    at.selectbox(key="hv_ds").set_value("cifar10").run()
    assert problems(at) == []
    assert "mnist_cnn" not in offered(at, "cifar10") and offered(at, "cifar10")[0] == "resnet18"
    assert any(c.value.startswith("Not offered: mnist_cnn") and "28×28 grey" in c.value for c in at.caption)
    assert "data not found" in blocked(at) and "cifar-10-batches-py" in blocked(at)  # default root is empty

    root = fresh / "data" / "my_cifar"  # typed paths must lie in a data folder (the home's data/ by default)
    write_cifar10(root, per_batch=2)
    at.text_input(key="hv_ds_cifar_root").input(str(root)).run()
    reason = blocked(at)
    assert "weights not on disk" in reason and str(hub) in reason and "upload" in reason

    hub.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), hub / "resnet18-f37072fd.pth")
    at.run()
    assert blocked(at) == ""
    at.multiselect(key="hv_bits_choice").set_value([]).run()
    assert "no bit length" in blocked(at)
    at.multiselect(key="hv_bits_choice").set_value([16]).run()

    at.selectbox(key="hv_ds").set_value("digits").run()  # grey digits again: the choice resets to mnist_cnn
    assert at.selectbox(key="hv_bb_digits").value == "mnist_cnn" and blocked(at) == ""

    at.selectbox(key="hv_ds").set_value("imagefolder").run()
    assert offered(at, "imagefolder")[-1] == "mnist_cnn"  # offered last: user files may be grey digits
    assert "no path given" in blocked(at)
    at.text_input(key="hv_ds_path").input(str(fresh / "data" / "missing")).run()
    assert "data not found" in blocked(at)
    at.text_input(key="hv_ds_path").input(str(tmp_path / "elsewhere")).run()  # outside the data folders
    assert "not in a data folder" in blocked(at)
    assert problems(at) == []
