"""The image-level class head: shapes, where it reads, and its config defaults and errors."""

from __future__ import annotations

import pytest
import torch

from podium.config import ConfigError, load_config
from podium.heads import make_head
from podium.models import build_model
from tests.conftest import tiny_config_dict

MASK = make_head("mask", "mask", classes=4, activation="sigmoid")


@pytest.mark.parametrize("source", ["encoder", "decoder"])
def test_class_head_gives_one_logit_per_class(source):
    spec = make_head("has_defect", "class", classes=4, source=source)
    model = build_model("Unet", "resnet18", {"mask": MASK, "has_defect": spec}).eval()
    out = model(torch.randn(2, 3, 64, 96))
    assert out["mask"].shape == (2, 4, 64, 96) and out["has_defect"].shape == (2, 4)
    assert spec.loss_context(None).mode == "multilabel"


def test_encoder_class_head_reads_only_the_deepest_feature():
    """Changing the decoder must not change an encoder-fed class head's output."""
    torch.manual_seed(0)
    spec = make_head("any", "class", classes=1, source="encoder", pooling="max")
    model = build_model("FPN", "resnet18", {"mask": MASK, "any": spec}).eval()
    x = torch.randn(1, 3, 64, 64)
    before = model(x)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(1.0)
    after = model(x)
    assert torch.equal(before["any"], after["any"])
    assert not torch.equal(before["mask"], after["mask"])
    # The head pools the encoder's deepest map: max pooling of it gives the same logit.
    deepest = model.encoder(x)[-1].amax((2, 3))
    linear = model.heads["any"].head[3]
    torch.testing.assert_close(after["any"], linear(deepest))


def _config(tmp_path, **class_head):
    raw = tiny_config_dict(tmp_path, tmp_path / "runs")
    raw["heads"]["mask"] = {"classes": 3, "activation": "sigmoid"}
    raw["heads"]["has"] = {"kind": "class", **class_head}
    return raw


def test_class_head_defaults(tmp_path):
    config = load_config(raw=_config(tmp_path, classes=3))
    head = config.heads["has"]
    assert (head.activation, head.source) == ("sigmoid", "encoder")
    assert [t.name for t in head.loss_terms()] == ["bce"]
    assert head.metric_names() == ["auroc", "accuracy"]
    # A sigmoid mask head without a loss list gets BCE, not the softmax default CE.
    assert [t.name for t in config.heads["mask"].loss_terms()] == ["bce"]
    # The dumped config loads back to the same heads (resume, checkpoints).
    again = load_config(raw=config.model_dump(mode="json"))
    assert again.heads == config.heads


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": 2}, "use 3 .* or 1"),
        ({"classes": 3, "activation": "softmax"}, "heads.has.activation.*sigmoid"),
        ({"classes": 3, "target": "labels"}, "remove the key"),
    ],
)
def test_class_head_errors_name_the_head(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_config(raw=_config(tmp_path, **change))


def test_class_head_needs_one_mask_head(tmp_path):
    raw = _config(tmp_path, classes=3)
    del raw["heads"]["mask"]
    with pytest.raises(ConfigError, match="exactly one mask head"):
        load_config(raw=raw)


def test_pooling_on_a_mask_head_is_refused(tmp_path):
    raw = _config(tmp_path, classes=3)
    raw["heads"]["mask"]["pooling"] = "max"
    with pytest.raises(ConfigError, match="heads.mask.pooling: unknown key"):
        load_config(raw=raw)


def test_softmax_mask_with_any_class_head_trains_and_predicts(tiny_config):
    """Semantic masks + "holds any non-background class": trains, logs, predicts B×1."""
    from podium.build.checkpoint import load_module
    from podium.inference.pipeline import InferenceOptions, Predictor
    from podium.workflows.fit import train

    tiny_config["heads"]["any"] = {"kind": "class", "classes": 1, "weight": 0.3}
    tiny_config["trainer"]["max_epochs"] = 1
    run_dir = train(load_config(raw=tiny_config))
    history = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val/any/auroc" in history and "train/any/bce" in history
    _, module = load_module(run_dir / "checkpoints/last.ckpt")
    out = Predictor([module], InferenceOptions(tta="d4"))(torch.zeros(3, 64, 64, dtype=torch.uint8))
    assert out["any"].shape == (1,) and 0 <= float(out["any"]) <= 1
    assert out["mask"].shape == (3, 64, 64)
