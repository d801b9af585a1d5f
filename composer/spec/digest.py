"""A spec's identity: the resolved spec (extends merged, --set applied, defaults filled in) hashed. Two files
that read alike to the compiler (YAML or .comp, 1e-3 or 0.001) have the same digest; it is what a kept count
was counted for (composer/compiler/shipped_list.py) and what every safetensors file composer writes names
(composer/compiler/fingerprint.py: identity)."""

from __future__ import annotations

import hashlib
import json

from composer.spec.ir import Spec


def spec_digest(spec: Spec) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
