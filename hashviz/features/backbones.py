"""Pretrained backbones: a registry whose entries know their transform, output dimension and weights source.

- ``mnist_cnn`` (default): a small CNN bundled as package data in ``hashviz/features/weights/mnist_cnn.pt``
  (state_dict), trained on the mnist5k train split only (2,000 images, split seed 0) by
  :func:`hashviz.features.train_cnn.train_mnist_cnn` (``hashviz train-backbone``).
  Its features are the 128-d penultimate layer; the 10-way ``classifier`` is used only for training.
- torchvision ``resnet18``, ``resnet50``, ``vgg16``, ``alexnet``, ``efficientnet_b0``, ``vit_b_16`` with their ImageNet
  weights, read from the torch hub cache (``torch.hub.get_dir()/checkpoints/<official file name>``) or from a user
  file; features = the penultimate layer (the classification layer replaced by ``Identity``). Nothing is
  downloaded unless ``download=True``.

Every weights file is read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hashviz import defaults
from hashviz.errors import DataUnavailableError, InvalidInputError
from hashviz.fileio import sha256_file
from hashviz.validate import unknown_choice

# Package data (shipped in the wheel): hashviz/features/weights/mnist_cnn.pt, found through importlib.resources so
# an installed hashviz loads it wherever it lives.
WEIGHTS_DIR = Path(str(resources.files("hashviz.features").joinpath("weights")))
BUNDLED_WEIGHTS = WEIGHTS_DIR / "mnist_cnn.pt"
# SHA-256 of the committed weights/mnist_cnn.pt (also in weights/README.md). A retrained file differs (torch.save
# writes a random serialization id), so train_mnist_cnn writes "<file>.sha256" next to it, which then wins.
BUNDLED_SHA256 = "0c95b3dc3cc56d0e4d91865f02750491a031a639f4cb9d5dbfe35db1add001e1"
RETRAIN_HINT = ("run `hashviz train-backbone` to recreate hashviz/features/weights/mnist_cnn.pt "
                "(about 30 s on 2 CPU cores)")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DEFAULT_BACKBONE = defaults.BACKBONE


class MnistCNN(nn.Module):
    """Two conv blocks (32, 64 channels, BatchNorm, max-pool) → 128-d ReLU features; ``classifier`` 128 → 10."""

    def __init__(self, feature_dim: int = 128, n_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, feature_dim), nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, 1, 28, 28) normalised → (n, 128) features
        return self.body(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


# name → (torchvision builder, output dim, official checkpoint file name, download URL)
TORCHVISION = {
    "resnet18": ("resnet18", 512, "resnet18-f37072fd.pth"),
    "resnet50": ("resnet50", 2048, "resnet50-11ad3fa6.pth"),
    "vgg16": ("vgg16", 4096, "vgg16-397923af.pth"),
    "alexnet": ("alexnet", 4096, "alexnet-owt-7be5be79.pth"),
    "efficientnet_b0": ("efficientnet_b0", 1280, "efficientnet_b0_rwightman-7f5810bc.pth"),
    "vit_b_16": ("vit_b_16", 768, "vit_b_16-c867db91.pth"),
}
DOWNLOAD_BASE = "https://download.pytorch.org/models/"
_DESCRIPTIONS = {
    "mnist_cnn": "small CNN bundled with hashviz (trained on the mnist5k train split), 128-d",
    "resnet18": "ResNet-18, ImageNet (torchvision IMAGENET1K_V1), 512-d pooled features",
    "resnet50": "ResNet-50, ImageNet (torchvision IMAGENET1K_V2), 2048-d pooled features",
    "vgg16": "VGG-16, ImageNet (torchvision IMAGENET1K_V1), 4096-d fc7 features",
    "alexnet": "AlexNet, ImageNet (torchvision IMAGENET1K_V1), 4096-d fc7 features",
    "efficientnet_b0": "EfficientNet-B0, ImageNet (torchvision IMAGENET1K_V1), 1280-d pooled features",
    "vit_b_16": "ViT-B/16, ImageNet (torchvision IMAGENET1K_V1), 768-d class token",
}


def hub_checkpoints_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/…``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path) -> str:
    """SHA-256 of a file, memoised by (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def _expected_sha(path: Path) -> str | None:
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8").split()
        return text[0].lower() if text else None
    if path.resolve() == BUNDLED_WEIGHTS.resolve():
        return BUNDLED_SHA256
    return None


_SAVE_HINT = "save only tensors: torch.save(model.state_dict(), path); hashviz never runs code from weight files"


def load_state_dict(path, *, source: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state_dict with ``torch.load(weights_only=True)``; a pickle that needs code is refused.

    A checkpoint dict holding the weights under ``"state_dict"`` or ``"model"`` is unwrapped. Messages name the
    file as ``source`` (e.g. the name of an upload) and never repeat torch's own advice."""
    path = Path(path)
    label = source or str(path)
    if not path.is_file():
        raise DataUnavailableError(f"weights file not found: {label}", "check the path of the weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():  # torch's restricted unpickler met a non-tensor object
            raise InvalidInputError(
                f"{label} was refused: it holds Python objects besides tensors, and hashviz loads weights only "
                "with torch.load(weights_only=True)", _SAVE_HINT) from None
        raise InvalidInputError(f"{label} is not a readable PyTorch weights file (damaged or another format)",
                                _SAVE_HINT) from None
    except Exception:  # noqa: BLE001 - RuntimeError (bad zip), EOFError (empty), KeyError (not a pickle), ...
        raise InvalidInputError(f"{label} is not a readable PyTorch weights file (truncated, damaged or another "
                                "format)", _SAVE_HINT) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise InvalidInputError(f"{label} does not hold a state_dict (a dict of name → tensor)",
                                "save it with torch.save(model.state_dict(), path)")
    return obj


def _key_names(keys: list[str]) -> list[str]:
    """Key names from a weights file for a message: plain parameter names only (others are only counted)."""
    return [k if _PLAIN_KEY.fullmatch(k) else "(a key with unusual characters)" for k in keys]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.]{1,100}")


def check_weight_values(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """InvalidInputError if a weight the model keeps in floating point is stored as integers or booleans
    (loading would cast it silently, rounding every weight) or holds NaN / infinite values."""
    expected = model.state_dict()
    cast, broken = [], []
    for k, v in expected.items():
        if k not in state or not v.is_floating_point():
            continue
        if not state[k].is_floating_point():
            cast.append(f"{k} {str(state[k].dtype).removeprefix('torch.')}")
        elif not bool(torch.isfinite(state[k]).all()):
            broken.append(k)

    def few(items: list[str]) -> str:
        return ", ".join(items[:5]) + (f" … ({len(items)} in all)" if len(items) > 5 else "")

    def tensors(k: int) -> str:
        return f"{k} {'floating-point weight tensor' if k == 1 else 'floating-point weight tensors'}"

    if cast:
        raise InvalidInputError(
            f"{source} stores {tensors(len(cast))} as integers or booleans ({few(cast)}); loading would round "
            "every weight and give a useless model",
            "save the weights as trained, without casting: torch.save(model.state_dict(), path)")
    if broken:
        raise InvalidInputError(
            f"{source} has NaN or infinite values in {tensors(len(broken))} ({few(broken)})",
            "the weights are broken (training diverged or the file was damaged): use an earlier checkpoint or "
            "train again")


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, arch: str, source: str) -> None:
    """InvalidInputError listing missing, unexpected and mismatched-shape keys (first few of each)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = _key_names([k for k in state if k not in expected])
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or mismatched):
        return

    def few(items: list[str]) -> str:
        return ", ".join(items[:5]) + (f" … ({len(items)} in all)" if len(items) > 5 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {few(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches (file vs {arch}): {few(mismatched)}")
    raise InvalidInputError(f"{source} does not fit the {arch} architecture; " + "; ".join(parts),
                            f"give a state_dict saved from torchvision.models.{arch}() (or hashviz's MnistCNN for "
                            "mnist_cnn), or pick the backbone that matches the file")


@dataclass(frozen=True)
class Backbone:
    """One registry entry. ``weights`` is a user file (``None``: the bundled file or the torch hub cache)."""

    name: str
    description: str
    output_dim: int
    input_size: int
    channels: int
    filename: str
    weights: Path | None = None
    download: bool = False
    # how messages name a user weights file (e.g. the name of an upload, not where the app saved it)
    weights_label: str | None = field(default=None, compare=False)

    @property
    def is_torchvision(self) -> bool:
        return self.name in TORCHVISION

    @property
    def url(self) -> str | None:
        return DOWNLOAD_BASE + self.filename if self.is_torchvision else None

    def weights_path(self) -> Path:
        """The file the weights come from (it may not exist yet)."""
        if self.weights is not None:
            return Path(self.weights).expanduser()
        if self.is_torchvision:
            return hub_checkpoints_dir() / self.filename
        return BUNDLED_WEIGHTS

    @property
    def weights_name(self) -> str:
        """The weights file as messages name it: ``weights_label`` if set, else its path."""
        if self.weights is not None and self.weights_label:
            return self.weights_label
        return str(self.weights_path())

    @property
    def weights_source(self) -> str:
        if self.weights is not None:
            return f"user file {self.weights_name}"
        if self.is_torchvision:
            return f"torch hub cache {self.weights_path()}"
        return f"bundled {self.weights_path()}"

    def available_offline(self) -> tuple[bool, str]:
        """(weights on disk now, where they are or which file is missing and where to put it)."""
        p = self.weights_path()
        if p.is_file():
            return True, f"weights at {p}"
        if self.weights is not None:
            return False, f"user weights file {self.weights_name} does not exist"
        if self.is_torchvision:
            return False, f"needs {self.filename} in {p.parent} (download=True fetches it when online)"
        return False, f"bundled weights {p} are missing; {RETRAIN_HINT}"

    def with_weights(self, weights=None, *, download: bool | None = None, label: str | None = None) -> Backbone:
        """This backbone with a user weights file (``label``: how messages name it, e.g. an upload's name)."""
        return replace(self, weights=None if weights is None else Path(weights).expanduser(),
                       download=self.download if download is None else bool(download),
                       weights_label=None if weights is None or label is None else str(label))

    def ensure_weights(self) -> Path:
        """The weights path, downloading official torchvision weights only if ``download=True``; else a clear
        DataUnavailableError naming the file and the folder to put it in."""
        p = self.weights_path()
        if p.is_file():
            return p
        if self.weights is not None:
            raise DataUnavailableError(f"weights file not found: {self.weights_name}",
                                       "check the path given for the weights")
        if not self.is_torchvision:
            raise DataUnavailableError(f"the bundled mnist_cnn weights {p} are missing", RETRAIN_HINT)
        if self.download:
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                prefix = self.filename.rsplit("-", 1)[-1].split(".")[0]  # official names end in -<sha256 prefix>
                torch.hub.download_url_to_file(self.url, str(p), hash_prefix=prefix, progress=False)
            except Exception as e:  # noqa: BLE001 - URLError, HTTPError, OSError, ...
                raise DataUnavailableError(f"could not download {self.url} ({e})",
                                           f"download it elsewhere and place it as {p}") from None
            return p
        raise DataUnavailableError(
            f"ImageNet weights for {self.name} are not in the torch hub cache: {p} is missing",
            f"put the file {self.filename} (from {self.url}) in the folder {p.parent}/ (set TORCH_HOME to move it), "
            "or pass download=True when online, or give weights=PATH to a state_dict file")

    def weights_sha256(self) -> str:
        """SHA-256 of the weights file (part of feature cache keys)."""
        return file_sha256(self.ensure_weights())

    def transform(self, images) -> torch.Tensor:
        """uint8 images (n, h, w) or (n, h, w, 3) → float tensor (n, c, s, s) ready for :meth:`load_model`'s model.

        Grey ↔ RGB as the model needs, a bilinear resize (antialiased) straight to the input size (no crop: the
        datasets here are small, centred images), then MNIST or ImageNet normalisation."""
        a = np.asarray(images)
        if a.dtype != np.uint8 or a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] not in (1, 3)):
            raise InvalidInputError(f"images must be uint8 (n, h, w) or (n, h, w, 3), got {a.dtype} {a.shape}",
                                    "convert images to uint8 first")
        x = torch.from_numpy(a.astype(np.float32)).div_(255.0)  # astype copies: works for read-only arrays
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        if self.channels == 1 and x.shape[1] == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif self.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        s = self.input_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        if self.channels == 1:
            return (x - MNIST_MEAN) / MNIST_STD
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def build(self) -> nn.Module:
        """The architecture with random weights and the full classification head."""
        if not self.is_torchvision:
            return MnistCNN()
        import torchvision

        return getattr(torchvision.models, TORCHVISION[self.name][0])(weights=None)

    def load_model(self, *, keep_classifier: bool = False) -> nn.Module:
        """The model in eval mode, producing (n, output_dim) features from :meth:`transform`'s output."""
        path = self.ensure_weights()
        if not self.is_torchvision:
            expected = _expected_sha(path)
            if expected is not None and file_sha256(path) != expected:
                raise DataUnavailableError(
                    f"{self.weights_name} has SHA-256 {file_sha256(path)[:16]}…, expected {expected[:16]}…: the "
                    "weights file is corrupt or was replaced", RETRAIN_HINT)
        state = load_state_dict(path, source=self.weights_name)  # refuse a bad file before building anything
        model = self.build()
        check_state_dict(model, state, arch=self.name, source=self.weights_name)
        check_weight_values(model, state, source=self.weights_name)
        model.load_state_dict(state)
        if not keep_classifier:
            _strip_classifier(self.name, model)
        return model.eval()


def _strip_classifier(name: str, model: nn.Module) -> None:
    if name.startswith("resnet"):
        model.fc = nn.Identity()
    elif name in ("vgg16", "alexnet", "efficientnet_b0"):
        model.classifier[-1] = nn.Identity()
    elif name == "vit_b_16":
        model.heads = nn.Identity()
    # mnist_cnn: forward() already stops before the classifier


_REGISTRY: tuple[Backbone, ...] = (
    Backbone("mnist_cnn", _DESCRIPTIONS["mnist_cnn"], 128, 28, 1, "mnist_cnn.pt"),
    *(Backbone(name, _DESCRIPTIONS[name], dim, 224, 3, fname) for name, (_, dim, fname) in TORCHVISION.items()),
)


def backbone_names() -> list[str]:
    return [b.name for b in _REGISTRY]


def list_backbones() -> list[Backbone]:
    """Every registered backbone (default weights), ``mnist_cnn`` first; ``.available_offline()`` says if usable."""
    return list(_REGISTRY)


def get_backbone(name: str = DEFAULT_BACKBONE, weights=None, *, download: bool = False,
                 label: str | None = None) -> Backbone:
    """A backbone entry; ``weights`` = path to a user state_dict for that architecture (``None``: the default
    source), ``download=True`` allows fetching official torchvision weights into the hub cache; ``label`` names
    the weights file in messages (the app passes the upload's file name, not the path it saved it under)."""
    key = str(name).strip().lower().replace("-", "_")
    for b in _REGISTRY:
        if b.name == key:
            return b.with_weights(weights, download=download, label=label)
    raise unknown_choice(name, "backbone", backbone_names())


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and values — equal for equal weights, whatever the file bytes."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.float().numpy().tobytes())
    return h.hexdigest()


# ---- which backbones suit a dataset, and whether a preparation can start now --------------------------------
# Registry sources by the images they give: grey digits (MNIST-like, what mnist_cnn was trained on), colour photos,
# or files decoded as RGB whose content is the user's (grey digits or photos); "embeddings" has no images.
GREY_SOURCES = ("mnist5k", "digits")
RGB_SOURCES = ("cifar10", "cifar100")
FILE_SOURCES = ("imagefolder", "listfile")
MNIST_CNN_ONLY_GREY = ("mnist_cnn expects 28×28 grey digits (it was trained on MNIST) and this dataset holds colour "
                       "images; pick an ImageNet backbone")


def image_kind(dataset) -> str | None:
    """``"grey"``, ``"rgb"``, ``"files"`` (decoded as RGB, content unknown) or ``None`` (no images) for a dataset
    name, a registry entry (:class:`hashviz.data.registry.DatasetEntry`) or a loaded :class:`ImageDataset`."""
    if hasattr(dataset, "has_images"):  # a loaded dataset: look at its pixels
        if getattr(dataset, "embeddings", None) is not None or not dataset.has_images:
            return None
        if dataset.images is not None:
            return "grey" if dataset.images.ndim == 3 else "rgb"
        return "files"
    name = str(getattr(dataset, "name", dataset)).strip().lower().replace("-", "")
    if name in GREY_SOURCES:
        return "grey"
    if name in RGB_SOURCES:
        return "rgb"
    if name in FILE_SOURCES:
        return "files"
    if name == "embeddings":
        return None
    from hashviz.data.registry import get_entry

    get_entry(name)  # unknown name → InvalidInputError listing the datasets
    return "files"


def incompatibility(backbone, dataset) -> str | None:
    """Why ``backbone`` (a name or :class:`Backbone`) cannot run on ``dataset``, or ``None`` if it can."""
    bb = backbone if isinstance(backbone, Backbone) else get_backbone(backbone)
    kind = image_kind(dataset)
    if kind is None:
        return "an embeddings file holds its embeddings already: no backbone runs on it"
    if bb.name == "mnist_cnn" and kind == "rgb":
        return MNIST_CNN_ONLY_GREY
    return None


def compatible_backbones(dataset) -> list[Backbone]:
    """The backbones that suit ``dataset`` (a name, registry entry or loaded dataset), the best first: grey
    digits → ``mnist_cnn`` then the ImageNet models (grey is copied to 3 channels); colour images → the ImageNet
    models only; image files of unknown content → the ImageNet models, then ``mnist_cnn`` (for grey digit images);
    an embeddings file → none."""
    kind = image_kind(dataset)
    if kind is None:
        return []
    tv = [b for b in _REGISTRY if b.is_torchvision]
    cnn = [b for b in _REGISTRY if not b.is_torchvision]
    return {"grey": cnn + tv, "rgb": tv, "files": tv + cnn}[kind]


def readiness(dataset, backbone=None, *, options=None, weights=None, upload: bool = False,
              bit_lengths=(16,), roots=None) -> tuple[bool, str]:
    """Whether a preparation can start now, and why not, for the app's Prepare button (``(True, "")`` when it can).

    ``dataset``: a registry name or entry; ``options``: its options (``path``, ``root``…; empty values ignored);
    ``backbone``: a name or :class:`Backbone` (default: the first of :func:`compatible_backbones`); ``weights``: a
    user state_dict path; ``upload``: a weights file was uploaded (checked when it is used); ``bit_lengths``:
    the chosen bit lengths. Checked in order: a path given when the source needs one, the data on disk, the
    backbone suits the data, its weights on disk, at least one bit length. ``roots``: the app's data roots — paths
    outside them are answered without saying whether they exist (:meth:`DatasetEntry.available_offline`)."""
    from hashviz.data.registry import get_entry

    entry = dataset if hasattr(dataset, "available_offline") else get_entry(dataset)
    opts = {k: v for k, v in dict(options or {}).items() if v not in (None, "")}
    if entry.needs_path and not opts.get("path"):
        what = {"imagefolder": "a folder with one subfolder per class", "listfile": "a list file"}.get(
            entry.name, "a file")
        return False, f"no path given: type the path of {what}"
    ok, why = entry.available_offline(**opts) if roots is None else entry.available_offline(roots=roots, **opts)
    if not ok:
        return False, f"data not found: {why}"
    if image_kind(entry) is not None:
        choices = compatible_backbones(entry)
        bb = backbone if isinstance(backbone, Backbone) else get_backbone(backbone) if backbone else choices[0]
        reason = incompatibility(bb, entry)
        if reason is not None:
            return False, reason
        if not upload:
            ok, why = (bb.with_weights(weights) if weights else bb).available_offline()
            if not ok:
                return False, f"weights not on disk: {why}; or upload your own state_dict for {bb.name}"
    if not list(bit_lengths or ()):
        return False, "no bit length chosen: pick at least one"
    return True, ""
