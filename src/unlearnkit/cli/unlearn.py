"""``unlearnkit unlearn``: forget data from a user's own model, without code, and write a sealed receipt.

The model comes from an importable factory plus a safetensors file. The forget set comes either as
indices into the training data (``--data`` / ``--data-factory`` with ``--forget-indices``) or as the
samples themselves (``--forget``, the retain-free path, with optional ``--reference`` and ``--test``
data). ``--previous`` makes the request the next link of a chain, ``--sign-key`` signs the receipt.
Writes OUT/model.safetensors (the input's state_dict keys), OUT/receipt.json and OUT/compare.html
(the model before and after, unless ``--no-compare``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any, Optional

from ..bench.pipeline.runtime import apply_threads
from ..errors import HyperparameterError, UnlearnkitError
from ..io import save_model
from ..ledger import inputs, request, signing
from ..ledger.chain import check_handed_on, previous_receipt
from ..ledger.digest import canonical_bytes, content, seal
from ..ledger.drift import assess_drift, describe_drift, thresholds_for
from ..ledger.hashes import weights_sha256
from ..ledger.receipt import check_needs, unlearn_with_receipt
from ..methods import get_method
from ..task import UnlearningTask
from ..training import TrainRecipe
from ..utils import atomic_write_text, to_jsonable
from .common import _key_values, _yaml_scalar

log = logging.getLogger(__name__)

OUTPUTS = ("model.safetensors", "receipt.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "unlearn", help="forget data from your own model (factory + safetensors weights) and write a receipt",
        description="Unlearn a forget set from your own trained model: --model-factory builds the architecture, "
                    "--weights loads it (safetensors only); the forget set is --forget-indices into --data (or "
                    "--data-factory), or the samples themselves with --forget (no training data needed). Writes "
                    "OUT/model.safetensors and OUT/receipt.json, sealed with a digest of its content; check them "
                    "later with `unlearnkit verify`.")
    m = p.add_argument_group("model")
    m.add_argument("--model-factory", required=True, metavar="MODULE:FUNCTION",
                   help="importable callable that builds the nn.Module, e.g. mypackage.models:build")
    m.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the factory, typed as a YAML scalar (repeatable)")
    m.add_argument("--weights", required=True, type=Path, help="the trained weights, a .safetensors file")
    d = p.add_argument_group("data: the training data and indices into it")
    source = d.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, metavar="FILE.npz",
                        help="arrays x, y (training data) and optionally x_test, y_test, x_third_party, y_third_party")
    source.add_argument("--data-factory", metavar="MODULE:FUNCTION",
                        help="importable callable returning the training Dataset or a dict of 'train', "
                             "'test', 'third_party' Datasets")
    d.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the data factory (repeatable)")
    d.add_argument("--forget-indices", type=Path, metavar="FILE",
                   help="indices into the training data to forget: one per line, or a .npy integer array")
    s = p.add_argument_group("data: the samples to forget themselves (retain-free: no training data needed)")
    s.add_argument("--forget", type=Path, metavar="FILE.npz",
                   help="arrays x, y: the samples to forget, instead of --data and --forget-indices (only "
                        "methods that run without retain data)")
    s.add_argument("--reference", type=Path, metavar="FILE.npz",
                   help="arrays x, y: same-domain samples the model never trained on (the task's third_party)")
    s.add_argument("--test", type=Path, metavar="FILE.npz", help="arrays x, y: test data for the evidence")
    _register_method_args(p)
    c = p.add_argument_group("ledger")
    c.add_argument("--previous", type=Path, metavar="PREV/receipt.json",
                   help="the receipt of the request this one follows: --weights must be its output model")
    c.add_argument("--sign-key", type=Path, metavar="KEY.pem",
                   help="sign the receipt with this Ed25519 private key (openssl genpkey -algorithm ed25519)")
    c.add_argument("--retrain-threshold", dest="thresholds", action="append", default=[], metavar="KEY=VALUE",
                   help="when to recommend a retrain: test_drop (points, default 2), removed_share (default 0.1), "
                        "forget_gap (points, default 10), ulira_acc (default 0.7); none turns one off (repeatable)")
    c.add_argument("--training-rows", type=int, metavar="N",
                   help="rows the chain's first model was trained on (the retain-free path cannot count them)")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not already hold a result)")
    p.add_argument("--no-compare", action="store_true",
                   help="do not write OUT/compare.html (the interactive comparison of the model before and after)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info logs")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    p.set_defaults(func=main)


def _register_method_args(p: argparse.ArgumentParser) -> None:
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
                        "(K >= 3; costs 2K trainings and K unlearning runs; needs --data or --data-factory)")


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
    if args.forget is None and args.data is None and args.data_factory is None:
        raise UnlearnkitError("give the forget set: --data (or --data-factory) with --forget-indices, or the "
                              "samples themselves with --forget FILE.npz")
    if args.forget is not None and (args.data is not None or args.data_factory is not None):
        raise UnlearnkitError("--forget gives the samples to forget instead of --data / --data-factory with "
                              "--forget-indices; give one or the other")
    if args.forget is None and args.forget_indices is None:
        raise UnlearnkitError("--data and --data-factory need --forget-indices (the rows to forget)")
    if args.forget is not None and args.forget_indices is not None:
        raise UnlearnkitError("--forget-indices points into --data; with --forget the samples are given directly")
    stray = [flag for flag, value in (("--reference", args.reference), ("--test", args.test)) if value is not None]
    if stray and args.forget is None:
        raise UnlearnkitError(f"{' and '.join(stray)} go with --forget; with --data put them in the .npz as "
                              "x_third_party, y_third_party and x_test, y_test")
    if args.audit and args.forget is not None:
        raise UnlearnkitError("--audit trains shadow models on the training data, which --forget does not give")
    if args.audit and args.audit < 3:
        raise UnlearnkitError(f"--audit K needs K >= 3 shadow pairs, got {args.audit}")
    if args.threads < 1:
        raise UnlearnkitError(f"--threads must be >= 1, got {args.threads}")
    if args.training_rows is not None and args.training_rows < 1:
        raise UnlearnkitError(f"--training-rows must be >= 1, got {args.training_rows}")
    if args.data_arg and not args.data_factory:
        raise UnlearnkitError("--data-arg applies to --data-factory only")


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    _check_args(args)
    apply_threads(args.threads)
    model_args, data_args = _kwargs(args.model_arg, "--model-arg"), _kwargs(args.data_arg, "--data-arg")
    canonical_bytes(to_jsonable([model_args, data_args]), "--model-arg / --data-arg")  # the receipt must hold them
    hyperparameters = dict(_key_values(args.sets, "--set"))
    algorithm = get_method(args.method, **hyperparameters)  # unknown method or bad hyperparameter: fail at once
    if args.forget is not None:
        given = {name for name, path in (("third_party", args.reference), ("test", args.test)) if path is not None}
        check_needs(algorithm, {"forget"} | given, request.FLAGS["samples"])  # before reading any file
    key = signing.private_key(args.sign_key, "--sign-key") if args.sign_key else None
    previous, prev_name = previous_receipt(args.previous) if args.previous else (None, "")
    thresholds = thresholds_for(previous, _kwargs(args.thresholds, "--retrain-threshold"), "--retrain-threshold")
    recipe = _recipe(args.train_sets) if args.train_sets or args.audit else None
    model = inputs.build_model(args.model_factory, model_args)
    inputs.load_weights(model, args.weights, args.model_factory)
    if previous is not None:
        check_handed_on(previous, prev_name, weights_sha256(model), f"--weights {args.weights}")
    req = _request(args, model, data_args, previous, prev_name)
    check_needs(algorithm, req.available, request.FLAGS[req.path])
    if previous is not None and previous.get("signer") and key is None:
        log.warning("%s is signed but this receipt will not be; pass --sign-key to keep the chain signed", prev_name)
    result = unlearn_with_receipt(model, **req.splits, method=args.method, forget_indices=req.forget_indices,
                                  recipe=recipe, seed=args.seed, device=args.device, previous=args.previous,
                                  training_rows=args.training_rows, retrain_thresholds=thresholds, **hyperparameters)
    receipt = content(result.receipt)
    receipt["inputs"] = _inputs_record(args, model_args, data_args, req)
    if args.audit:
        task = UnlearningTask.from_data(model, **req.splits, recipe=recipe)
        receipt["audit"], receipt["wall_time_s"]["audit"] = _audit(args, model_args, task, result.model, recipe,
                                                                   hyperparameters)
        receipt["drift"] = assess_drift(receipt, previous, thresholds)
    model_path = save_model(result.model, args.out / "model.safetensors",
                            metadata={"method": receipt["method"]["name"], "seed": args.seed})
    receipt["outputs"] = {"model": model_path.name, "model_file_sha256": inputs.file_sha256(model_path)}
    receipt["wall_time_s"]["total"] = time.perf_counter() - start
    receipt = seal(receipt, key)
    atomic_write_text(args.out / "receipt.json", json.dumps(receipt, indent=2) + "\n")
    page = None if args.no_compare else _compare(args, model, result.model, req)
    _print_summary(receipt, args.out, req, prev_name)
    if page is not None:
        print(f"comparison page: {page}")
    return 0


def _compare(args: argparse.Namespace, original, unlearned, req: request.Request) -> Optional[Path]:
    """OUT/compare.html: the model before and after, on the request's forget, retain and test data."""
    from ..bench.pipeline.comparison import write_model_comparison

    task = UnlearningTask.from_data(original, **req.splits)
    return write_model_comparison(args.out, original, unlearned, task, method=args.method, seed=args.seed,
                                  title=f"{args.model_factory} / {args.method}")


def _request(args: argparse.Namespace, model, data_args: dict, previous: Optional[dict], prev_name: str
             ) -> request.Request:
    if args.forget is not None:
        return request.from_samples(args.forget, args.reference, args.test)
    data = inputs.load_npz(args.data) if args.data is not None else inputs.data_from_factory(args.data_factory, data_args)
    return request.from_training_data(model, data, args.forget_indices, previous, prev_name)


def _inputs_record(args: argparse.Namespace, model_args: dict, data_args: dict, req: request.Request) -> dict[str, Any]:
    """Where the inputs came from, with the SHA-256 of each file's bytes."""
    record: dict[str, Any] = {"model_factory": args.model_factory, "model_args": model_args,
                              "weights": str(args.weights), "weights_file_sha256": inputs.file_sha256(args.weights),
                              **req.record}
    if args.data is not None:
        record.update(data=str(args.data), data_file_sha256=inputs.file_sha256(args.data))
    elif args.data_factory is not None:
        record.update(data_factory=args.data_factory, data_args=data_args)
    if args.previous is not None:
        record.update(previous=str(args.previous))
    if req.excluded:
        record.update(training_rows_removed_earlier=req.excluded)
    return record


def _audit(args: argparse.Namespace, model_args: dict, task: UnlearningTask, unlearned, recipe: TrainRecipe,
           hyperparameters: dict) -> tuple[dict[str, Any], float]:
    """The audit's summary and its wall time."""
    from ..ledger.audit import audit_request

    if not args.train_sets:
        log.warning("the audit's shadow models use the default training recipe %s; pass --train KEY=VALUE "
                    "to match how your model was trained", recipe)
    started = time.perf_counter()
    summary = audit_request(partial(inputs.build_model, args.model_factory, model_args), task,
                            get_method(args.method, **hyperparameters), unlearned, recipe, args.audit,
                            forget_indices=task.forget.indices, device=args.device, progress=not args.quiet)
    return summary, time.perf_counter() - started


def _print_summary(receipt: dict[str, Any], out: Path, req: request.Request, prev_name: str) -> None:
    before, after, counts = receipt["metrics"]["before"], receipt["metrics"]["after"], receipt["counts"]
    names = [n for n in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy") if n in after]
    of = f" of {counts['forget'] + counts['retain']} training examples" if req.path == "indices" else " samples"
    print(f"{receipt['method']['name']}: forgot {counts['forget']}{of} in {receipt['wall_time_s']['unlearn']:.2f} s")
    for name in names:
        print(f"  {name:<13} {_pct(before.get(name))} -> {_pct(after.get(name))}")
    if receipt["no_op"]:
        print("  warning: no-op - the forget predictions and loss did not change; try a stronger setting")
    if receipt["over_forgetting"].get("overforget"):
        print("  warning: over-forgetting - the forget set now looks less familiar than unseen data "
              f"(retraining would leave it like unseen data); try {receipt['over_forgetting']['hint']}")
    if "audit" in receipt:
        au = receipt["audit"]
        print(f"  U-LiRA ({au['shadow_models']} shadow pairs): attack accuracy {au['ulira_acc']:.3f}, "
              f"this model looks unlearned on {100 * au['target_looks_unlearned_fraction']:.0f}% of the forget set")
    data = receipt["data"]
    print(f"  the method saw: {', '.join(data['seen_by_method'])}; not: "
          + "; ".join(f"{k} ({v})" for k, v in data["not_seen"].items()))
    chain = receipt["chain"]
    share = f", {100 * chain['share_removed']:.1f}% of {chain['training_rows']} training rows" \
        if chain["share_removed"] is not None else ""
    follows = f" (follows {prev_name})" if prev_name else ""
    excluded = f"; {req.excluded} training rows removed earlier left out of retain" if req.excluded else ""
    print(f"  chain: request {chain['requests']}{follows}; {chain['rows_removed']} rows removed in all{share}{excluded}")
    for line in describe_drift(receipt["drift"]):
        print(f"  {line}")
    signer = receipt.get("signer")
    sealed = f"sealed (digest {receipt['digest']['sha256']})"
    print(f"  {sealed}, signed by key sha256:{signer['public_key_sha256']}" if signer else f"  {sealed}, not signed")
    print(f"model: {out / 'model.safetensors'}   receipt: {out / 'receipt.json'}")


def _pct(value: Any) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"
