"""Frozen backbone layers stored in the run's half dtype, and the forward schedule worked out once."""

import networkx
import pytest
import torch
from conftest import tiny_batch

from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.fingerprint import fingerprint
from composer.compiler.memory import MemoryModel
from composer.compiler.precision import frozen_layer_weights
from composer.rundir.checkpoint import tensor_digest
from composer.spec.load import load_spec

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]
ADAPTER = "specs/baselines/clip-adapter.yaml"
DORA = "specs/baselines/dinov2-dora-linear.yaml"


def build(spec: str, precision: str = "fp32", device: str = "cpu"):
    torch.manual_seed(0)
    return compile_spec(load_spec(spec, sets=SMALL), BuildOptions(device=device, tiny=True, precision=precision))


def test_bf16_build_stores_frozen_layer_weights_in_bf16_and_keeps_the_rest_fp32():
    model = build(ADAPTER, "bf16")
    cast = {id(p) for p in frozen_layer_weights(model)}
    assert cast
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.dtype == torch.float32, name  # fp32 master weights
        elif id(p) in cast:
            assert p.dtype == torch.bfloat16, name
        else:  # norms, embeddings, positional tables
            assert p.dtype == torch.float32, name
    norms = [m for m in model.backbones.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)


def test_fp32_build_casts_nothing():
    assert all(p.dtype == torch.float32 for p in build(ADAPTER).parameters())


@pytest.mark.parametrize("spec", [ADAPTER, "specs/baselines/clip-lora.yaml", "specs/papers/tds-clip.yaml"])
def test_bf16_build_computes_what_autocast_computed_from_fp32_weights(spec):
    """Autocast rounds a fp32 weight to bf16 on every forward; storing it rounded once is the same number."""
    full, half = build(spec), build(spec, "bf16")
    torch.manual_seed(1)
    batch = tiny_batch(full)
    with torch.autocast("cpu", torch.bfloat16):
        a, b = full(batch), half(batch)
    assert torch.equal(a["loss"], b["loss"])
    assert torch.equal(a[full.graph.predict], b[half.graph.predict])


@pytest.mark.parametrize("spec", [ADAPTER, DORA])
def test_bf16_training_step_moves_the_fp32_trainable_weights(spec):
    model = build(spec, "bf16")
    model.train()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in trainable.items()}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    with torch.autocast("cpu", torch.bfloat16):
        loss = model(tiny_batch(model))["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    assert any(not torch.equal(before[n], p) for n, p in trainable.items())
    assert all(torch.equal(frozen[n], p) for n, p in model.named_parameters() if not p.requires_grad)


def test_dora_in_bf16_stays_close_to_fp32_under_autocast():
    """DoRA adds its fp32 factors to the (now bf16) base weight and renormalises: not bit-identical, but
    within bf16 rounding of the fp32 build."""
    full, half = build(DORA), build(DORA, "bf16")
    torch.manual_seed(1)
    batch = tiny_batch(full)
    with torch.autocast("cpu", torch.bfloat16):
        a, b = full(batch)[full.graph.predict].float(), half(batch)[half.graph.predict].float()
    assert torch.allclose(a, b, rtol=0.05, atol=0.05 * a.abs().max().item())


def test_checkpoints_are_the_same_in_either_precision():
    full, half = build(ADAPTER), build(ADAPTER, "bf16")
    assert fingerprint(full) == fingerprint(half)
    assert tensor_digest(full.trainable_state()) == tensor_digest(half.trainable_state())


def test_memory_bill_counts_the_frozen_layers_in_bf16():
    full, half = (compile_spec(load_spec(ADAPTER), BuildOptions(precision=p)) for p in ("fp32", "bf16"))
    a, b = MemoryModel(full, "bf16"), MemoryModel(half, "bf16")
    assert "torch.bfloat16" not in str(a.weights_by_dtype) and b.weights_by_dtype
    cast = sum(p.numel() for p in frozen_layer_weights(half))
    assert sum(a.weights_by_dtype.values()) - sum(b.weights_by_dtype.values()) == 2 * cast
    assert a.trainable == b.trainable


def test_forward_makes_no_graph_library_call_after_the_first_step(monkeypatch):
    model = build(ADAPTER)
    batch = tiny_batch(model)
    first = model(batch)
    model(batch, outputs=[model.graph.predict])

    def refuse(*args, **kwargs):
        raise AssertionError("a networkx call inside a step")

    for name in ("ancestors", "descendants", "topological_sort", "has_path"):
        monkeypatch.setattr(networkx, name, refuse)
    again = model(batch)
    assert torch.equal(first["loss"], again["loss"])
    model(batch, outputs=[model.graph.predict])


def test_a_bf16_run_builds_its_frozen_layers_in_bf16_and_caches_bf16_features(demo_root, tmp_path):
    from rich.console import Console
    from rich.progress import Progress
    from safetensors.torch import load_file

    from composer.train.run import Run, RunOptions

    cache = tmp_path / "features"
    job = Run("specs/baselines/clip-linear-probe.yaml",
              RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=1, max_steps=1, batch_size=8,
                         workers=0, out=str(tmp_path / "runs"), sets=list(SMALL), seed=0, precision="bf16",
                         cache_features=str(cache)), console=Console(quiet=True))
    assert job.model.backbones["clip"].towers["visual"].visual.conv1.weight.dtype == torch.bfloat16
    del job.task.train.items[4:]  # a few clips show the dtype; caching all 192 in bf16 on a CPU is slow
    with Progress(disable=True) as bars:
        job._train_data(bars)
    assert len(list(cache.glob("*.safetensors"))) == 4
    features = load_file(next(cache.glob("*.safetensors")))
    assert features and all(t.dtype == torch.bfloat16 for t in features.values())


VIDEOMAE_LORA = """name: videomae-lora
backbones: {mae: {family: videomae, size: ViT-B/16}}
components:
  lora: {kind: lora, site: "mae.visual.blocks[*].mlp.fc1", params: {r: 4}}
  head: {kind: linear_head}
  ce: {kind: cross_entropy}
flow:
  features: {call: mae.visual, in: [video]}
  logits: {call: head, in: [features]}
  ce_loss: {call: ce, in: [logits, label]}
losses: {ce_loss: 1.0}
"""


@pytest.mark.parametrize("spec, size", [("clip-lora", 32), ("viclip-lora", 32), ("dinov2-dora-linear", 28),
                                        ("videomae-lora", 32)])
def test_a_float64_build_runs_a_training_step_in_float64(spec, size, tmp_path):
    """A backbone runs in the dtype of its weights: a float64 model (a numerical reference) trains in float64
    end to end, and agrees with the float32 one. The backbones cast their input with `.float()`, so a float64
    model stopped at its first layer; the losses rounded float64 scores to float32."""
    from composer.spec.shipped import shipped

    sets = [f"inputs.video.size={size}", "inputs.video.frames=2"]
    if spec == "videomae-lora":
        (tmp_path / "videomae-lora.yaml").write_text(VIDEOMAE_LORA)
    path = str(tmp_path / "videomae-lora.yaml") if spec == "videomae-lora" else shipped()[spec]
    torch.manual_seed(0)
    model = compile_spec(load_spec(path, sets=sets), BuildOptions(device="cpu", tiny=True, num_classes=3))
    reference = compile_spec(load_spec(path, sets=sets), BuildOptions(device="cpu", tiny=True, num_classes=3))
    reference.load_state_dict(model.state_dict())
    model.double().train()
    reference.train()
    batch = tiny_batch(model)
    wide = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in batch.items()}
    out = model(wide)
    assert out["loss"].dtype == out[model.graph.predict].dtype == torch.float64
    out["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float64 for g in grads)
    narrow = reference(batch)[reference.graph.predict]
    assert torch.allclose(out[model.graph.predict].float(), narrow, rtol=1e-3, atol=1e-3)
