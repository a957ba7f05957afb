"""``unlearnkit unlearn``: forget part of the training data of a user's own model, without code.

The model comes from an importable factory plus a safetensors file, the data from an .npz file or
an importable data factory, the forget set from a file of indices into the training data. Writes
OUT/model.safetensors (the input's state_dict keys) and OUT/receipt.json (the deletion receipt).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.pipeline.runtime import apply_threads
from ..errors import HyperparameterError, UnlearnkitError
from ..io import save_model
from ..methods import get_method
from ..receipt import unlearn_with_receipt
from ..task import UnlearningTask
from ..training import TrainRecipe
from ..utils import atomic_write_text
from . import _inputs
from .common import _key_values, _yaml_scalar

log = logging.getLogger(__name__)

OUTPUTS = ("model.safetensors", "receipt.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "unlearn", help="forget data from your own model (factory + safetensors weights) and write a receipt",
        description="Unlearn a forget set from your own trained model: --model-factory builds the architecture, "
                    "--weights loads it (safetensors only), --data or --data-factory gives the training data and "
                    "--forget-indices the rows to forget. Writes OUT/model.safetensors and OUT/receipt.json; "
                    "check a model file against the receipt later with `unlearnkit verify`.")
    m = p.add_argument_group("model")
    m.add_argument("--model-factory", required=True, metavar="MODULE:FUNCTION",
                   help="importable callable that builds the nn.Module, e.g. mypackage.models:build")
    m.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the factory, typed as a YAML scalar (repeatable)")
    m.add_argument("--weights", required=True, type=Path, help="the trained weights, a .safetensors file")
    d = p.add_argument_group("data")
    source = d.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="FILE.npz",
                        help="arrays x, y (training data) and optionally x_test, y_test, x_third_party, y_third_party")
    source.add_argument("--data-factory", metavar="MODULE:FUNCTION",
                        help="importable callable returning the training Dataset or a dict of 'train', "
                             "'test', 'third_party' Datasets")
    d.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the data factory (repeatable)")
    d.add_argument("--forget-indices", required=True, type=Path, metavar="FILE",
                   help="indices into the training data to forget: one per line, or a .npy integer array")
    u = p.add_argument_group("unlearning")
    u.add_argument("--method", required=True, help="method name (see `unlearnkit methods`)")
    u.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="hyperparameter of the method, e.g. --set lr=0.01 (repeatable)")
    u.add_argument("--seed", type=int, default=0, help="seed of the unlearning run (default 0)")
    u.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1 ...")
    u.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1; the thread count changes float rounding, so the same seed, "
                        "device and threads give the same output weights)")
    u.add_argument("--train", dest="train_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="how your model was trained (epochs, lr, optimizer, batch_size, momentum, weight_decay, "
                        "schedule): the recipe of the audit's shadow models and of the retrain method (repeatable)")
    a = p.add_argument_group("audit")
    a.add_argument("--audit", type=int, default=0, metavar="K",
                   help="add a per-example U-LiRA audit against K shadow pairs trained with the factory "
                        "(K >= 3; costs 2K trainings and K unlearning runs)")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not already hold a result)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info logs")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    p.set_defaults(func=main)


def _kwargs(items: list[str], flag: str) -> dict[str, Any]:
    return {k: _yaml_scalar(v) for k, v in _key_values(items, flag)}


def _recipe(items: list[str]) -> TrainRecipe:
    try:
        return TrainRecipe.from_dict(_kwargs(items, "--train"))
    except HyperparameterError as exc:
        raise HyperparameterError(f"--train: {exc}") from exc


def _check_args(args: argparse.Namespace) -> None:
    """Everything that needs no file read or model built, so a typo fails at once."""
    existing = [name for name in OUTPUTS if (args.out / name).exists()]
    if existing:
        raise UnlearnkitError(f"--out {args.out} already holds {', '.join(existing)}; choose a new folder so "
                              "no receipt is overwritten")
    if args.audit and args.audit < 3:
        raise UnlearnkitError(f"--audit K needs K >= 3 shadow pairs, got {args.audit}")
    if args.threads < 1:
        raise UnlearnkitError(f"--threads must be >= 1, got {args.threads}")
    if args.data_arg and not args.data_factory:
        raise UnlearnkitError("--data-arg applies to --data-factory only")


def _inputs_record(args: argparse.Namespace, model_args: dict, data_args: dict) -> dict[str, Any]:
    """Where the inputs came from, with the SHA-256 of each file's bytes."""
    record: dict[str, Any] = {"model_factory": args.model_factory, "model_args": model_args,
                              "weights": str(args.weights), "weights_file_sha256": _inputs.file_sha256(args.weights),
                              "forget_indices": str(args.forget_indices),
                              "forget_indices_file_sha256": _inputs.file_sha256(args.forget_indices)}
    if args.data is not None:
        record.update(data=str(args.data), data_file_sha256=_inputs.file_sha256(args.data))
    else:
        record.update(data_factory=args.data_factory, data_args=data_args)
    return record


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    _check_args(args)
    apply_threads(args.threads)
    model_args, data_args = _kwargs(args.model_arg, "--model-arg"), _kwargs(args.data_arg, "--data-arg")
    hyperparameters = dict(_key_values(args.sets, "--set"))
    get_method(args.method, **hyperparameters)  # unknown method or bad hyperparameter: fail before loading
    recipe = _recipe(args.train_sets) if args.train_sets or args.audit else None
    model = _inputs.build_model(args.model_factory, model_args)
    _inputs.load_weights(model, args.weights, args.model_factory)
    data = _inputs.load_npz(args.data) if args.data is not None else _inputs.data_from_factory(args.data_factory, data_args)
    train = data["train"]
    idx = _inputs.load_indices(args.forget_indices, len(train))
    retain_idx = np.setdiff1d(np.arange(len(train)), idx)
    splits = {"forget": train.subset(idx), "retain": train.subset(retain_idx) if len(retain_idx) else None,
              "test": data.get("test"), "third_party": data.get("third_party")}
    result = unlearn_with_receipt(model, **splits, method=args.method, forget_indices=idx, recipe=recipe,
                                  seed=args.seed, device=args.device, **hyperparameters)
    receipt = result.receipt
    receipt["inputs"] = _inputs_record(args, model_args, data_args)
    if args.audit:
        task = UnlearningTask.from_data(model, **splits, recipe=recipe)
        receipt["audit"] = _audit(args, model_args, task, result, recipe, hyperparameters)
    model_path = save_model(result.model, args.out / "model.safetensors",
                            metadata={"method": receipt["method"]["name"], "seed": args.seed})
    receipt["outputs"] = {"model": model_path.name, "model_file_sha256": _inputs.file_sha256(model_path)}
    receipt["wall_time_s"]["total"] = time.perf_counter() - start
    atomic_write_text(args.out / "receipt.json", json.dumps(receipt, indent=2) + "\n")
    _print_summary(receipt, args.out)
    return 0


def _audit(args: argparse.Namespace, model_args: dict, task: UnlearningTask, result, recipe: TrainRecipe,
           hyperparameters: dict) -> dict[str, Any]:
    from ..bench.receipt_audit import audit_request

    if not args.train_sets:
        log.warning("the audit's shadow models use the default training recipe %s; pass --train KEY=VALUE "
                    "to match how your model was trained", recipe)
    started = time.perf_counter()
    summary = audit_request(partial(_inputs.build_model, args.model_factory, model_args), task,
                            get_method(args.method, **hyperparameters), result.model, recipe, args.audit,
                            forget_indices=task.forget.indices, device=args.device, progress=not args.quiet)
    result.receipt["wall_time_s"]["audit"] = time.perf_counter() - started
    return summary


def _print_summary(receipt: dict[str, Any], out: Path) -> None:
    before, after = receipt["metrics"]["before"], receipt["metrics"]["after"]
    names = [n for n in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy") if n in after]
    print(f"{receipt['method']['name']}: forgot {receipt['counts']['forget']} of "
          f"{receipt['counts']['forget'] + receipt['counts']['retain']} training examples in "
          f"{receipt['wall_time_s']['unlearn']:.2f} s")
    for name in names:
        b, a = before.get(name), after.get(name)
        print(f"  {name:<13} {_pct(b)} -> {_pct(a)}")
    if receipt["no_op"]:
        print("  warning: no-op - the forget predictions and loss did not change; try a stronger setting")
    if "audit" in receipt:
        au = receipt["audit"]
        print(f"  U-LiRA ({au['shadow_models']} shadow pairs): attack accuracy {au['ulira_acc']:.3f}, "
              f"this model looks unlearned on {100 * au['target_looks_unlearned_fraction']:.0f}% of the forget set")
    print(f"model: {out / 'model.safetensors'}   receipt: {out / 'receipt.json'}")


def _pct(value: Any) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"
