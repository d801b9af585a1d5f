"""The paper specs: each trains a step at tiny size, and the behaviours their papers rely on hold."""

import pytest
import torch
from conftest import ROOT, tiny_batch, tiny_model

from composer.errors import DataError, SpecError
from composer.spec.load import load_spec

PAPERS = sorted((ROOT / "specs" / "papers").rglob("*.yaml"))


def small(path, frames=2):
    spec = load_spec(path)
    families = {b.family for b in spec.backbones.values()}
    size = 56 if "dinov2" in families else 64
    frames = 4 if "videomae" in families else frames
    return load_spec(path, sets=[f"inputs.video.frames={frames}", f"inputs.video.size={size}"])


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.name)
def test_paper_spec_trains_a_step_at_tiny_size(path, dataset_files):
    model = tiny_model(small(path), classes=3)
    model.use_dataset_files(dataset_files)
    model.train()
    batch = tiny_batch(model, clips=2, classes=3)
    stages = model.spec.stages or {"all": None}
    for stage in stages.values():
        losses = dict(stage.losses) if stage else None
        out = model(batch, losses=losses)
        assert out[model.graph.predict].shape == (2, 3)
        assert torch.isfinite(out["loss"])
        out["loss"].backward()
    grads = [p.grad for p in model.trainable_state().values()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_tds_never_sends_a_gradient_into_clip(dataset_files):
    model = tiny_model(small(ROOT / "specs/papers/tds-clip.yaml"), classes=3)
    model.train()
    out = model(tiny_batch(model, classes=3))
    out["loss"].backward()
    clip = model.backbones["clip"]
    assert all(p.grad is None for p in clip.parameters())
    assert all(not p.requires_grad for p in clip.parameters())
    assert model.components["side"].stem.motion is not None
    assert model.plan.grad_from["clip.visual(centre_frames)"] is None


def test_tds_side_network_recomputes_under_the_plan_with_the_same_gradients():
    from composer.compiler.compile import BuildOptions, compile_spec
    from composer.recompute import kept_for_backward

    spec = small(ROOT / "specs/papers/tds-clip.yaml")
    models = {}
    for recompute in (True, False):
        torch.manual_seed(0)
        models[recompute] = compile_spec(spec, BuildOptions(device="cpu", tiny=True, recompute=recompute,
                                                            num_classes=3))
        models[recompute].train()
    assert models[True].components["side"].recompute and not models[False].components["side"].recompute
    assert "side: keeps only the inputs" in " ".join(models[True].plan.describe(models[True].graph))
    batch = tiny_batch(models[True], classes=3)
    kept = {r: kept_for_backward(lambda m=m: m(batch)["loss"], m) for r, m in models.items()}
    assert kept[True] < 0.6 * kept[False]
    for (name, a), b in zip(models[True].trainable_state().items(), models[False].trainable_state().values()):
        assert a.grad is not None and torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4), name


def test_tds_without_sme_has_no_motion_stem():
    model = tiny_model(small(ROOT / "specs/papers/ablations/tds-clip-no-sme.yaml"), classes=3)
    assert model.components["side"].stem.motion is None


def test_zero_initialised_msta_reproduces_the_frozen_viclip(dataset_files):
    spec = load_spec(ROOT / "specs/papers/msta.yaml", sets=["inputs.video.frames=8", "inputs.video.size=64",
                                                             "components.msta.params.init=zero"])
    model = tiny_model(spec, classes=3)
    video = torch.rand(2, 8, 3, 64, 64)
    texts = ["a video of running.", "a video of swimming."]
    with torch.no_grad():
        for tower, x in (("visual", video), ("text", texts)):
            t = model.backbones["viclip"].towers[tower]
            assert torch.equal(t.run(x, 0, True)[""], t.run(x, None, False)[""])


def test_msta_shares_one_projection_per_layer_between_the_towers():
    model = tiny_model(small(ROOT / "specs/papers/msta.yaml"), classes=3)
    msta = model.components["msta"]
    assert set(msta["shared"].keys()) == {str(i) for i in range(1, 13)}
    visual, text = msta["viclip_visual"]["5"], msta["viclip_text"]["5"]
    assert visual.shared_layers is text.shared_layers is msta["shared"]
    assert visual.temporal is not None and text.temporal is None


def test_missing_classes_in_a_text_file_are_named(dataset_files, tmp_path):
    import json

    model = tiny_model(small(ROOT / "specs/papers/msta.yaml"), classes=3)
    broken = tmp_path / "partial.json"
    table = json.loads(dataset_files["descriptions"].read_text())
    table.pop("action number 1")
    broken.write_text(json.dumps(table))
    model.use_dataset_files({"descriptions": broken})
    with pytest.raises(DataError, match="no entry for 1 class\\(es\\): action number 1"):
        model(tiny_batch(model, classes=3))


def test_a_stage_that_trains_nothing_is_an_error(tmp_path):
    from conftest import write

    child = write(tmp_path, "x.yaml", f"extends: {ROOT / 'specs/papers/ftp.yaml'}\n"
                  "stages:\n  finetune: {trains: []}\n")
    with pytest.raises(SpecError, match="stages.finetune.trains"):
        load_spec(child)


def test_a_stage_that_trains_a_frozen_part_is_an_error(tmp_path):
    from conftest import write

    from composer.compiler.compile import compile_spec

    child = write(tmp_path, "x.yaml", f"extends: {ROOT / 'specs/papers/ftp.yaml'}\n"
                  "components:\n  head: {frozen: true}\n")
    with pytest.raises(SpecError, match="stage 'finetune' trains 'head', which has no trainable parameters"):
        compile_spec(load_spec(child))


@pytest.mark.parametrize("encoder", ["mlp", "lstm", "transformer", "tada", "c3d", "r2plus1d"])
def test_each_reparameterisation_encoder_keeps_the_prompt_shape(encoder):
    from composer.components.prompts.reparameterization import Reparameterization

    beta = Reparameterization(64, 32, encoder, residual=True)
    prompts = torch.randn(2, 4, 1 + 8 + 4, 64)
    assert beta(prompts).shape == prompts.shape
    assert torch.equal(beta(prompts), prompts)  # residual with a zero last layer: P_R = P at the start


def test_temporal_prompts_give_each_frame_one_summary_s_global_and_t_interchange_prompts():
    model = tiny_model(small(ROOT / "specs/papers/temporal-prompts-dual-text.yaml", frames=4), classes=3)
    prompts = model.components["prompts"]["3"]
    x = torch.randn(2 * 4, 1 + 16, 64)

    class Ctx:
        batch, frames = 2, 4

    assert prompts(x, Ctx).shape == (8, 1 + 8 + 4, 64)


def test_word_query_pooling_weights_frames_by_the_words():
    from composer.components.fusion.word_query_pooling import WordQueryParams
    from composer.components.fusion.word_query_pooling_module import WordQueryPooling

    pool = WordQueryPooling(WordQueryParams(temperature=0.01))
    frames = torch.eye(3).unsqueeze(0)  # three orthogonal frames
    words = torch.zeros(2, 4, 3)
    words[0, 1] = torch.tensor([1.0, 0, 0])  # class 0's one word matches frame 0
    words[1, 1], words[1, 2] = torch.tensor([0, 1.0, 0]), torch.tensor([0, 0, 1.0])  # class 1: frames 1 and 2
    mask = torch.tensor([[0, 1, 0, 0], [0, 1, 1, 0]], dtype=torch.float)
    out = pool(frames, words, mask)
    assert torch.allclose(out[0, 0], torch.tensor([1.0, 0, 0]), atol=1e-3)
    assert torch.allclose(out[0, 1], torch.tensor([0, 0.5, 0.5]), atol=1e-3)
