"""Every safetensors file composer writes says what it belongs to (composer version, spec name and digest, the
model's fingerprint; a resume state also where training was), and `composer inspect` shows it.

Budget: about 15 s (one tiny linear-probe run of 2 steps with cached features)."""

import json

import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file
from test_run import options, quiet

from composer.cli import main
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.spec.digest import spec_digest
from composer.spec.load import load_spec
from composer.train.run import Run
from composer.version import composer_version

SPEC = "specs/baselines/clip-linear-probe.yaml"
IDENTITY = ("composer_version", "spec", "spec_digest", "fingerprint")


def test_every_file_a_run_writes_carries_its_identity_and_inspect_shows_it(demo_root, tmp_path):
    job = Run(SPEC, options(demo_root, tmp_path, cache_features=str(tmp_path / "cache")), console=quiet())
    job.fit()
    files = sorted(job.dir.rglob("*.safetensors")) + sorted((tmp_path / "cache").rglob("*.safetensors"))
    kinds = {f.name if "cache" not in f.parts else "feature" for f in files}
    assert {"weights.safetensors", "state.safetensors", "best.safetensors", "feature"} <= kinds, kinds
    digest = spec_digest(job.spec)
    for f in files:
        with safe_open(str(f), framework="pt") as opened:
            meta = opened.metadata()
        assert {k: meta[k] for k in IDENTITY} == {"composer_version": composer_version(), "spec": job.spec.name,
                                                 "spec_digest": digest, "fingerprint": meta["fingerprint"]}, f
        if f.name == "state.safetensors":
            assert {meta["stage"], meta["epoch"], meta["step"]} and meta["step"] == "2", meta
    assert digest == spec_digest(load_spec(str(job.dir / "spec.yaml")))  # the run's own spec.yaml
    shown = CliRunner().invoke(main, ["inspect", str(latest_checkpoint(job.dir / "checkpoints"))])
    assert shown.exit_code == 0, shown.output
    assert f"spec_digest: {digest}" in shown.output and f"spec: {job.spec.name}" in shown.output
    assert "state.safetensors:" in shown.output and "weights.safetensors:" in shown.output
    as_json = CliRunner().invoke(main, ["inspect", "--json", str(job.dir / "checkpoints" / "best.safetensors")])
    record = json.loads(as_json.output)
    assert record["metadata"]["composer"]["seed"] == 0 and record["tensors"] >= 1 and record["bytes"] > 0


def test_inspect_says_what_a_foreign_or_broken_file_is(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2, 3)}, str(plain))
    shown = CliRunner().invoke(main, ["inspect", str(plain)])
    assert shown.exit_code == 0 and "no composer metadata" in shown.output and "tensors: 1 (24 bytes)" in shown.output
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    refused = CliRunner().invoke(main, ["inspect", str(broken)])
    assert refused.exit_code == 2 and "not a readable safetensors file" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    hostile = tmp_path / "hostile.safetensors"
    save_file({"w": torch.zeros(1)}, str(hostile), metadata={"composer": "[" * 100_000, "x" * 5000: "y" * 100_000})
    odd = CliRunner().invoke(main, ["inspect", str(hostile)])
    assert odd.exit_code == 0 and odd.exception is None and len(odd.output) < 5000, odd.output[-300:]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    none = CliRunner().invoke(main, ["inspect", str(empty)])
    assert none.exit_code == 2 and "no .safetensors file" in none.output
