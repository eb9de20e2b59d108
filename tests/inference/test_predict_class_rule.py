"""predict refuses a class-head rule it cannot apply, before the first image."""

from __future__ import annotations

import pytest

from podium.inference.postprocess import PostProcess, check_class_rule

RULE = PostProcess(num_classes=2, class_threshold=(0.5, 0.5))


def test_rule_needs_a_class_head():
    with pytest.raises(ValueError, match="pp.yaml: key 'class_threshold' needs a model with"):
        check_class_rule(RULE, None, "pp.yaml", None)


def test_rule_is_refused_with_tiles():
    with pytest.raises(ValueError, match="tiled inference drops"):
        check_class_rule(RULE, "has_defect", "pp.yaml", 256)


def test_no_rule_or_a_usable_head_passes():
    check_class_rule(PostProcess(num_classes=2), None, "pp.yaml", 256)
    check_class_rule(RULE, "has_defect", "pp.yaml", None)
