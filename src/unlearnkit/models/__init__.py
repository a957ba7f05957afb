"""Model zoo: small models for the embedded datasets and a CIFAR-style ResNet-18.

``build_model(name, input_shape, num_classes)`` builds a registered architecture for the given
input shape (C, H, W) or (C, L); any ``nn.Module`` a user brings works everywhere else too.
"""

from __future__ import annotations

import inspect
import math
import typing
from typing import Any, Callable

import torch
from torch import nn

from ..errors import HyperparameterError, UnlearnkitError
from ..params import convert_value
from ..registry import Registry
from ..utils import eval_mode

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """A registered architecture for ``input_shape`` and ``num_classes``; ``options`` are its builder's
    keyword arguments, converted to the types it declares (``typed_model_options``)."""
    return MODELS.get(name)(tuple(input_shape), int(num_classes), **typed_model_options(name, options))


def typed_model_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of model ``name`` converted to the types its builder declares, as plain values (a
    ``tuple[int, ...]`` option becomes a list of ints, from a list, one int or a string like "64,64", so
    that configs hash and store as before); an unknown name or a wrong type raises, naming the valid ones."""
    builder = MODELS.get(name)
    hints = typing.get_type_hints(builder)
    valid = [p for p in inspect.signature(builder).parameters if p not in ("input_shape", "num_classes")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UnlearnkitError(f"model {name!r} has no option(s) {unknown}; valid: {valid}")
    out = {}
    for key, value in options.items():
        typ = hints.get(key)
        if typing.get_origin(typ) is tuple:
            items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
            out[key] = [convert_value(f"model option {name}", key, v, int) for v in items]
            if any(v < 1 for v in out[key]):
                raise HyperparameterError(f"model option {name}.{key} must be positive integers, got {value!r}")
        else:
            out[key] = convert_value(f"model option {name}", key, value, typ) if typ is not None else value
    return out


@MODELS.register("mlp")
def mlp(input_shape, num_classes, hidden: tuple[int, ...] = (256, 256), batchnorm: bool = False,
        dropout: float = 0.0) -> nn.Module:
    """Fully connected ReLU network on the flattened input (mnist1d default: 40-256-256-10). ``hidden``:
    the widths of the hidden layers (their number is the depth); ``batchnorm``: BatchNorm1d after each
    hidden Linear (before its ReLU); ``dropout``: dropout of that probability after each hidden ReLU."""
    if not 0.0 <= dropout < 1.0:
        raise HyperparameterError(f"model option mlp.dropout must be in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [nn.ReLU()]
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


@MODELS.register("cnn")
def cnn(input_shape, num_classes, width: int = 32) -> nn.Module:
    """Two conv blocks + classifier for (C, H, W) images of 8x8, 28x28 or 32x32 pixels."""
    if len(input_shape) != 3:
        raise UnlearnkitError(f"model 'cnn' needs (C, H, W) inputs, got shape {input_shape}; "
                              "use 'cnn1d' or 'mlp' for 1-D data")
    c, h, w = input_shape
    pool = 2 if min(h, w) >= 16 else 1  # 8x8 digits keep their resolution for the first block
    blocks = nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.MaxPool2d(pool) if pool > 1 else nn.Identity(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2),
    )
    with torch.no_grad():
        flat = blocks(torch.zeros(1, c, h, w)).numel()
    return nn.Sequential(blocks, nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))


@MODELS.register("cnn1d")
def cnn1d(input_shape, num_classes, width: int = 32) -> nn.Module:
    """1-D convolutional network for (C, L) signals such as mnist1d."""
    if len(input_shape) != 2:
        raise UnlearnkitError(f"model 'cnn1d' needs (C, L) inputs, got shape {input_shape}")
    c, length = input_shape
    blocks = nn.Sequential(
        nn.Conv1d(c, width, 5, padding=2), nn.ReLU(),
        nn.Conv1d(width, width, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv1d(width, width, 3, padding=1, stride=2), nn.ReLU(),
    )
    with torch.no_grad():
        flat = blocks(torch.zeros(1, c, length)).numel()
    return nn.Sequential(blocks, nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool), as used by most unlearning papers."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            layers.append(nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


@MODELS.register("resnet18")
def resnet18(input_shape, num_classes, width: int = 64) -> nn.Module:
    """ResNet-18 (CIFAR variant) for (C, H, W) images."""
    if len(input_shape) != 3:
        raise UnlearnkitError(f"model 'resnet18' needs (C, H, W) inputs, got shape {input_shape}")
    return ResNet18(input_shape[0], num_classes, width)


def reinitialize(model: nn.Module) -> nn.Module:
    """Reset every submodule that defines ``reset_parameters`` (in place) and return the model.

    Works for user models built from standard layers, so Retrain and "random teacher" methods
    need no model factory.
    """
    for module in model.modules():
        if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
            module.reset_parameters()
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
    return model


def output_size(model: nn.Module, example: torch.Tensor) -> int:
    """Number of logits the model returns for one example (used to validate labels)."""
    with eval_mode(model), torch.no_grad():
        out = model(example[:1].to(next(model.parameters()).device))
    return int(out.shape[-1])
