"""Every baseline spec trains a step at tiny size on CPU (full-size builds: test_report.py; papers: test_papers.py)."""

import pytest
import torch
from conftest import SPECS, tiny_batch, tiny_model

from composer.spec.load import load_spec


@pytest.mark.parametrize("path", [p for p in SPECS if p.suffix != ".comp" and p.parent.name == "baselines"],
                         ids=lambda p: p.name)
def test_tiny_forward_and_backward_on_cpu(path):  # the paper specs: tests/test_papers.py
    spec = load_spec(path, sets=["inputs.video.frames=2"])
    size = 56 if any(b.family == "dinov2" for b in spec.backbones.values()) else 64
    model = tiny_model(load_spec(path, sets=["inputs.video.frames=2", f"inputs.video.size={size}"]), classes=3)
    model.train()
    out = model(tiny_batch(model))
    assert out[model.graph.predict].shape == (2, 3)
    if model.spec.losses:
        assert torch.isfinite(out["loss"])
        out["loss"].backward()
        component_grads = [p.grad for n, p in model.trainable_state().items() if n.startswith("components.")]
        assert all(g is not None for g in component_grads)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.trainable_state().values())
    else:
        assert not model.trainable_state()
