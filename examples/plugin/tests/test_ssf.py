"""The plugin's kind passes the contract composer's own kinds pass (composer/testing.py)."""

from composer.testing import assert_kind_contract


def test_ssf_keeps_composers_attachment_contract():
    report = assert_kind_contract("ssf", families=["dinov2"])  # one family, one tower: seconds; leave out for all
    assert {(c.point, c.at_blocks) for c in report.accepted} == {("attn", True), ("mlp", True), ("block", True),
                                                                  ("output", False)}
