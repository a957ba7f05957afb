"""Datasets: the embedded defaults (digits, mnist1d, synthetic) and torchvision adapters.

Each loader returns a ``DatasetBundle`` with three disjoint splits: ``train`` (what the original
model is trained on and forget/retain sets are drawn from), ``test`` and ``third_party`` (held-out
data no model ever trains on, for methods that need unseen data). Nothing is downloaded.
"""

from __future__ import annotations

import inspect
import io
import logging
import typing
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..errors import DataError, UnlearnkitError
from ..params import convert_value
from ..registry import Registry
from ..utils import atomic_write_bytes, cache_root, stable_hash
from .split import Split

log = logging.getLogger(__name__)

DATASETS: Registry[Callable[..., "DatasetBundle"]] = Registry("dataset")


@dataclass
class DatasetBundle:
    name: str
    train: Split
    test: Split
    third_party: Split
    num_classes: int
    input_shape: tuple[int, ...]
    meta: dict = field(default_factory=dict)


def _three_way(x: np.ndarray, y: np.ndarray, seed: int, fractions=(0.6, 0.2, 0.2)):
    """Stratified split into train/test/third_party with a fixed seed (the data split is part of
    the dataset's definition and does not change with the experiment seed)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, train_size=fractions[0], stratify=y, random_state=seed)
    rel = fractions[1] / (fractions[1] + fractions[2])
    test_idx, tp_idx = train_test_split(rest, train_size=rel, stratify=y[rest], random_state=seed)
    return [np.sort(i) for i in (train_idx, test_idx, tp_idx)]


def _bundle(name, x, y, num_classes, split_seed, meta=None) -> DatasetBundle:
    x_t = torch.as_tensor(x, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.long)
    splits = [Split(x_t[i], y_t[i], i) for i in _three_way(x, y, split_seed)]
    return DatasetBundle(name, *splits, num_classes=num_classes, input_shape=tuple(x_t.shape[1:]),
                         meta=meta or {})


@DATASETS.register("digits")
def load_digits(split_seed: int = 0) -> DatasetBundle:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1],
    shaped (1, 8, 8); 60/20/20 train/test/third-party split, stratified."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.data / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    return _bundle("digits", x, d.target.astype(np.int64), 10, split_seed)


@DATASETS.register("mnist1d")
def load_mnist1d(n_samples: int = 5000, split_seed: int = 0) -> DatasetBundle:
    """MNIST-1D generated offline with the ``mnist1d`` package's generator (never its download):
    ``n_samples`` 40-point signals, 10 classes, shaped (1, 40); 60/20/20 split. Generation is slow
    (tens of seconds per 5,000 signals on one core), so the arrays are cached on disk under
    ``$UNLEARNKIT_CACHE/datasets`` (key: the generator's arguments and package version)."""
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 100:
        raise DataError(f"mnist1d n_samples={n_samples!r} is too small or not an integer; use an integer >= 100")
    x, y = _mnist1d_arrays(n_samples)
    return _bundle("mnist1d", x, y, 10, split_seed)


def _mnist1d_arrays(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised signals (N, 1, 40) and labels of the generator's dataset, from the disk cache."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise UnlearnkitError("the mnist1d dataset needs the 'mnist1d' package: pip install mnist1d") from exc
    from importlib.metadata import version

    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.seed = 42
    key = {k: v for k, v in vars(args).items() if k != "url"}
    path = cache_root() / "datasets" / f"mnist1d-{stable_hash({**key, 'version': version('mnist1d')})}.npz"
    if path.exists():
        try:
            with np.load(path) as cached:
                return cached["x"], cached["y"]
        except (OSError, ValueError, KeyError) as exc:  # unreadable: generate again
            log.warning("ignoring unreadable dataset cache %s (%s); regenerating", path, exc)
    log.info("generating mnist1d with %d samples (cached at %s)", n_samples, path)
    data = make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    # standardisation keeps the scale comparable to the image datasets
    x = ((x - x.mean()) / x.std()).reshape(-1, 1, x.shape[1])
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    atomic_write_bytes(path, buffer.getvalue())
    return x, y


@DATASETS.register("synthetic")
def load_synthetic(n_samples: int = 600, n_features: int = 10, n_classes: int = 4,
                   separation: float = 2.5, split_seed: int = 0, label_noise: float = 0.0) -> DatasetBundle:
    """Gaussian mixture: one isotropic Gaussian per class around random centres. For fast tests and
    tabular benchmarks. ``label_noise``: the fraction of examples (in every split) whose label is
    replaced by a uniformly drawn *other* class, so that a model can only memorise them."""
    if n_classes < 2:
        raise DataError(f"synthetic n_classes={n_classes}: need at least 2 classes")
    if not 0.0 <= label_noise < 1.0:
        raise DataError(f"synthetic label_noise={label_noise}: use a fraction in [0, 1)")
    rng = np.random.default_rng(1234)
    centres = rng.normal(size=(n_classes, n_features)) * separation / np.sqrt(n_features) * 2
    y = np.arange(n_samples) % n_classes
    x = centres[y] + rng.normal(size=(n_samples, n_features))
    if label_noise > 0:  # drawn after the features, so the inputs are those of the noise-free data
        flip = rng.random(n_samples) < label_noise
        y = np.where(flip, (y + rng.integers(1, n_classes, n_samples)) % n_classes, y)
    return _bundle("synthetic", x.astype(np.float32), y.astype(np.int64), n_classes, split_seed)


_TORCHVISION = {
    "cifar10": ("CIFAR10", 10), "cifar100": ("CIFAR100", 100), "mnist": ("MNIST", 10),
    "fashion_mnist": ("FashionMNIST", 10), "svhn": ("SVHN", 10),
}


def load_torchvision(name: str, root: str, split_seed: int = 0, third_party_fraction: float = 0.5):
    """A torchvision dataset read from a local ``root`` (never downloaded).

    The official train split is the training set; the official test split is halved (stratified)
    into ``test`` and ``third_party``. Images are scaled to [0, 1], channels first.
    """
    try:
        import torchvision
    except ImportError as exc:
        raise UnlearnkitError(
            f"dataset {name!r} needs torchvision: pip install 'unlearnkit[vision]' "
            "(and a matching torch build)"
        ) from exc
    cls_name, num_classes = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    try:
        if name == "svhn":
            train, test = cls(root, split="train", download=False), cls(root, split="test", download=False)
        else:
            train, test = cls(root, train=True, download=False), cls(root, train=False, download=False)
    except (RuntimeError, FileNotFoundError) as exc:
        raise DataError(f"{name} not found under root={root!r}: place the dataset files there "
                        f"(unlearnkit never downloads) - {exc}") from exc

    def arrays(ds):
        data = np.asarray(ds.data)
        labels = np.asarray(getattr(ds, "targets", getattr(ds, "labels", None)))
        if data.ndim == 3:  # (N, H, W) grey
            data = data[:, None]
        elif data.shape[-1] in (1, 3) and data.shape[1] not in (1, 3):  # NHWC -> NCHW
            data = data.transpose(0, 3, 1, 2)
        return (data.astype(np.float32) / 255.0), labels.astype(np.int64)

    x_tr, y_tr = arrays(train)
    x_te, y_te = arrays(test)
    from sklearn.model_selection import train_test_split

    te_idx, tp_idx = train_test_split(np.arange(len(y_te)), test_size=third_party_fraction,
                                      stratify=y_te, random_state=split_seed)
    te_idx, tp_idx = np.sort(te_idx), np.sort(tp_idx)
    tr = Split(torch.from_numpy(x_tr), torch.from_numpy(y_tr), np.arange(len(y_tr)))
    te = Split(torch.from_numpy(x_te[te_idx]), torch.from_numpy(y_te[te_idx]), te_idx)
    tp = Split(torch.from_numpy(x_te[tp_idx]), torch.from_numpy(y_te[tp_idx]), tp_idx)
    return DatasetBundle(name, tr, te, tp, num_classes, tuple(x_tr.shape[1:]), meta={"root": root})


def _register_torchvision(name: str) -> None:
    @DATASETS.register(name)
    def _load(root: str = "./data", split_seed: int = 0) -> DatasetBundle:
        return load_torchvision(name, root, split_seed)

    _load.__doc__ = f"torchvision {_TORCHVISION[name][0]} from a local root (needs torchvision)."


for _name in _TORCHVISION:
    _register_torchvision(_name)


def load_dataset(name: str, **options) -> DatasetBundle:
    """Load a registered dataset by name; ``options`` go to its loader (e.g. ``n_samples``)."""
    return DATASETS.get(name)(**typed_options(name, options))


def typed_options(name: str, options: dict) -> dict:
    """``options`` of dataset ``name`` converted to the types its loader declares (unknown names raise)."""
    loader = DATASETS.get(name)
    valid = set(inspect.signature(loader).parameters)
    unknown = set(options) - valid
    if unknown:
        raise UnlearnkitError(f"dataset {name!r} has no option(s) {sorted(unknown)}; valid: {sorted(valid)}")
    types = typing.get_type_hints(loader)
    return {k: convert_value(f"dataset option {name}", k, v, types[k]) if k in types else v
            for k, v in options.items()}


def non_default_options(name: str, options: dict) -> dict:
    """The ``options`` of dataset ``name`` whose typed value differs from its loader's default: what
    sets this data apart from the dataset as registered ({} when every option is a default)."""
    defaults = {k: p.default for k, p in inspect.signature(DATASETS.get(name)).parameters.items()}
    return {k: v for k, v in typed_options(name, options).items() if v != defaults[k]}
