"""The plan changes where autograd runs and what is reused, never the results."""

import pytest
import torch
from conftest import tiny_batch, tiny_model

from composer.recompute import kept_for_backward
from composer.spec.load import load_spec

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("spec, sets", [
    ("specs/baselines/clip-adapter.yaml", ["components.adapter.site=clip.visual.blocks[8-12].mlp"]),
    ("specs/baselines/clip-lora.yaml", []),
    ("specs/baselines/dinov2-dora-linear.yaml", ["components.dora.site=dino.visual.blocks[10-12].attn.qkv",
                                                  "inputs.video.size=56"]),
])
def test_plan_and_no_plan_give_identical_outputs_and_gradients(spec, sets):
    results = []
    for plan in (True, False):
        torch.manual_seed(0)
        model = tiny_model(load_spec(spec, sets=SMALL + sets), plan=plan)
        # the adapters start at zero; move them so gradients flow through every part
        with torch.no_grad():
            for p in model.trainable_state().values():
                p.add_(0.01 * torch.randn_like(p))
        torch.manual_seed(1)
        batch = tiny_batch(model)
        out = model(batch)
        out["loss"].backward()
        results.append((out["loss"].detach(), out[model.graph.predict].detach(), _grads(model)))
    (loss_a, pred_a, grads_a), (loss_b, pred_b, grads_b) = results
    assert torch.equal(loss_a, loss_b) and torch.equal(pred_a, pred_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name


def test_frozen_prefix_runs_without_autograd():
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml",
                                 sets=SMALL + ["components.adapter.site=clip.visual.blocks[8-12].mlp"]))
    assert model.plan.grad_from["clip.visual(video)"] == 7
    seen = []
    tower = model.backbones["clip"].towers["visual"]
    for i in (6, 7):
        block = tower.visual.transformer.resblocks[i]
        block.ln_1.register_forward_hook(lambda m, a, out, i=i: seen.append((i, torch.is_grad_enabled())))
    model(tiny_batch(model))
    assert seen == [(6, False), (7, True)]


def test_frozen_text_tower_is_computed_once_per_class_set():
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    calls = []
    text = model.backbones["clip"].towers["text"]
    original = text.run
    text.run = lambda *a, **k: calls.append(1) or original(*a, **k)
    batch = tiny_batch(model)
    model(batch)
    model(batch)
    assert len(calls) == 1
    model(dict(batch, class_names=["other", "classes", "now"]))
    assert len(calls) == 2


def test_a_trainable_text_tower_is_not_cached():
    model = tiny_model(load_spec("specs/baselines/clip-lora.yaml", sets=SMALL))
    assert model.plan.cached_nodes == {"c:texts"}
    assert model.plan.grad_from["clip.text(texts)"] == 0


def _saved_bytes(model, batch) -> int:
    """Bytes kept for the backward pass (what peak training memory grows with)."""
    return kept_for_backward(lambda: model(batch)["loss"], model)


def test_the_plan_recomputes_frozen_blocks_instead_of_storing_them():
    spec = load_spec("specs/baselines/clip-adapter.yaml",
                     sets=SMALL + ["components.adapter.site=clip.visual.blocks[8-12].mlp"])
    planned, naive = tiny_model(spec, plan=True), tiny_model(spec, plan=False)
    assert planned.plan.recompute["clip.visual(video)"] == frozenset(range(7, 12))
    batch = tiny_batch(planned)
    assert _saved_bytes(planned, batch) < 0.6 * _saved_bytes(naive, batch)
