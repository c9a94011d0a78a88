"""The one description of the U-Net MobileNet (seg_jax.inference.plan) that the fused path and ONNX walk."""
import jax
import pytest

from seg_jax.inference.plan import ACTIVATIONS, GATES, OPS, mobilenet_plan, plan_for, walk
from seg_jax.models.build import build_model, dummy_input
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS


def _modules(tree, prefix=()):
    """The paths of the Flax modules that hold arrays directly (convs, BatchNorms, cells)."""
    out = set()
    for key, value in tree.items():
        if isinstance(value, dict) or hasattr(value, "items"):
            if any(not hasattr(v, "items") for v in value.values()):
                out.add("/".join(prefix + (key,)))
            out |= _modules(value, prefix + (key,))
    return out


@pytest.mark.parametrize("name", ["mobilenet", "convlstm"])
def test_plan_reads_every_parameter_of_the_model(name):
    """An architecture change in the Linen modules that the plan misses fails here."""
    model = build_model({"name": name})
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_input(name, 1, 64, 64), train=False))
    plan = plan_for(name)
    read = {s.param for s in plan.steps if s.param}
    read |= {s.param.rsplit("/", 1)[0] + "/" + s.bn for s in plan.steps if s.bn}
    assert read == _modules(dict(shapes["params"]))
    assert plan.recurrent == (name == "convlstm")
    assert sum(s.op == "convlstm" for s in plan.steps) == (len(DECODER_WIDTHS) if plan.recurrent else 0)


@pytest.mark.parametrize("args", [(False,), (True,), (True, "sigmoid", True), (False, "hard_sigmoid", False, False)])
def test_plan_is_well_formed(args):
    plan = mobilenet_plan(*args)
    defined = {plan.input}
    for step in plan.steps:
        assert step.op in OPS and step.out not in defined, step
        assert all(name in defined for name in step.ins), step
        assert step.act in (GATES if step.op == "convlstm" else ACTIVATIONS), step
        defined.add(step.out)
    assert plan.output in defined and plan.steps[-1].out == plan.output


def test_head_first_and_residual_cells_change_the_order():
    ops = [s.op for s in mobilenet_plan().steps[-2:]]
    assert ops == ["pointwise", "upsample"]                       # head at half resolution, then upsample
    assert [s.op for s in mobilenet_plan(head_first=False).steps[-2:]] == ["upsample", "pointwise"]
    assert [s.op for s in mobilenet_plan(True).steps[-2:]] == ["convlstm", "pointwise"]   # cells need full size
    resid = mobilenet_plan(True, "hard_sigmoid", True).steps
    assert [s.op for s in resid[-3:]] == ["convlstm", "add", "pointwise"]


def test_walk_calls_the_backend_per_step_and_bad_options_are_one_line():
    class Record:   # a backend whose values are the ops that made them
        def __init__(self):
            self.calls = []

        def __getattr__(self, op):
            def call(step, *values):
                assert len(values) == len(step.ins)
                self.calls.append(op)
                return (op, step.out)
            return call

    plan, backend = mobilenet_plan(), Record()
    assert walk(plan, backend, "image") == ("upsample", "logits")
    assert backend.calls == [s.op for s in plan.steps]
    with pytest.raises(ValueError, match="gate_activation must be one of"):
        mobilenet_plan(True, "tanh")
    with pytest.raises(ValueError, match="model 'unet' has no folded plan; only \\['mobilenet', 'convlstm'\\]"):
        plan_for("unet")
