"""The contract every registered method honours (run over the whole registry).

Same architecture and state_dict keys out, input model untouched, train/eval modes restored,
deterministic under a seed, and forget accuracy lowered on a toy class-forgetting problem.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import pytest

from unlearnkit.methods import METHODS, ClosedFormMethod, IterativeMethod, get_method
from unlearnkit.data.split import Split
from unlearnkit.task import SPLIT_NAMES
from conftest import forget_accuracy, forget_loss, state_equal

ALL = METHODS.names()
#: methods that by definition do not forget
NO_FORGETTING = {"original"}


@pytest.mark.parametrize("name", ALL)
def test_method_contract(name, toy_class):
    model, data = toy_class
    task = data.task
    before = copy.deepcopy(model)
    # a mixed mode: the model in train mode with one submodule in eval
    model.train()
    list(model.modules())[1].eval()
    modes = [m.training for m in model.modules()]

    method = get_method(name)
    start = time.perf_counter()
    out1 = method.unlearn(model, task, seed=123, device="cpu")
    elapsed = time.perf_counter() - start
    out2 = get_method(name).unlearn(model, task, seed=123, device="cpu")

    assert type(out1) is type(model)
    assert out1 is not model
    assert [k for k in out1.state_dict()] == [k for k in model.state_dict()]
    assert all(out1.state_dict()[k].shape == v.shape for k, v in model.state_dict().items())
    assert state_equal(model, before), f"{name} modified the input model"
    assert [m.training for m in model.modules()] == modes
    assert [m.training for m in out1.modules()] == modes, f"{name} did not restore train/eval modes"
    assert state_equal(out1, out2), f"{name} is not deterministic under a seed"
    assert elapsed < 30, f"{name} took {elapsed:.1f}s on a toy problem"

    model.eval()
    if name not in NO_FORGETTING:
        # Forgetting shows as lower forget accuracy or, for weak methods such as plain fine-tuning
        # (which only forgets through drift), as a clearly higher loss on the forget set.
        acc_before, acc_after = forget_accuracy(model, task), forget_accuracy(out1, task)
        loss_before, loss_after = forget_loss(model, task), forget_loss(out1, task)
        assert acc_after < acc_before - 0.05 or loss_after > 1.25 * loss_before + 1e-4, (
            f"{name} did not forget on the toy class-forgetting task: forget acc {acc_before:.3f} -> "
            f"{acc_after:.3f}, forget loss {loss_before:.4f} -> {loss_after:.4f}"
        )


@pytest.mark.parametrize("name", ALL)
def test_method_metadata(name):
    cls = METHODS.get(name)
    assert cls.name == name
    assert cls.summary.strip() and "\n" not in cls.summary, f"{name} needs a one-line summary"
    assert cls.family in ("reference", "iterative", "closed_form", "other"), f"{name}: unknown family {cls.family!r}"
    family_base = {"iterative": IterativeMethod, "closed_form": ClosedFormMethod}.get(cls.family)
    assert family_base is None or issubclass(cls, family_base), f"{name} says {cls.family} but is not a {family_base}"
    module_doc = __import__(cls.__module__, fromlist=["x"]).__doc__
    assert module_doc and len(module_doc.strip()) > 40, f"{name}'s file needs its header docstring"
    for h in cls.Params.describe():
        assert h["help"], f"{name}.{h['name']} has no help text"
    assert "forget" in cls.requires


class _Undeclared(Split):
    """Stands in for a split the method under test does not declare: a Split without data, so any use
    of it fails the test with a message naming the split."""

    def __init__(self, method: str, split: str) -> None:
        self.what = f"{method} reads {split} but declares neither requires nor optional {split}"

    def to(self, device):  # the template moves every split before the method runs
        return self

    def __getattr__(self, attr):
        raise AssertionError(f"{self.what} (.{attr})")

    def __len__(self):
        raise AssertionError(f"{self.what} (len)")



@pytest.mark.parametrize("name", ALL)
def test_method_reads_only_the_splits_it_declares(name, toy_class):
    """``requires`` and ``optional`` are what the audit and ``unlearnkit methods`` report a method
    reads: every other split of a full task is a trap. Methods with a parameter selection run it on a
    data score, which reads the forget set and ``corrected`` when given."""
    model, data = toy_class
    cls = METHODS.get(name)
    declared = set(cls.requires) | set(cls.optional)
    task = dataclasses.replace(data.task, **{s: _Undeclared(name, s) for s in SPLIT_NAMES if s not in declared})
    params = {f.name for f in dataclasses.fields(cls.Params)}
    options = {"select": "grad", "select_fraction": 0.5} if "select" in params else {}
    get_method(name, **options).unlearn(model, task, seed=0, device="cpu")


def test_registration_refuses_a_select_method_that_hides_its_corrected_reads():
    from unlearnkit.methods.blocks.registry import check_declarations

    class RetainOnly(IterativeMethod):  # overrides the family's declaration and drops corrected
        name, summary, optional = "retain_only", "test double", ("retain",)

    with pytest.raises(TypeError, match=r"RetainOnly takes select, whose scores read the corrected split"):
        check_declarations(RetainOnly)
    check_declarations(type("WithCorrected", (RetainOnly,), {"optional": ("retain", "corrected")}))
    check_declarations(type("NoSelect", (ClosedFormMethod,), {}))  # no select parameter: nothing to declare
    with pytest.raises(TypeError, match=r"declares \['retain'\] both required and optional"):
        check_declarations(type("Both", (ClosedFormMethod,), {"requires": ("forget", "retain"), "optional": ("retain",)}))
