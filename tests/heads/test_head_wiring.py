"""What a head reads: extra model inputs (GSD-like scalars), earlier heads, an encoder depth."""

from __future__ import annotations

import pytest
import torch

from podium.build import build_module
from podium.config import ConfigError, load_config
from tests.conftest import tiny_config_dict


def _raw(tmp_path, **heads):
    raw = tiny_config_dict(tmp_path, tmp_path / "runs")
    raw["model"]["encoder_name"] = "tu-lcnet_035"
    raw["model"]["kwargs"] = {"decoder_channels": [16, 8, 8, 8, 8]}
    raw["model"]["inputs"] = {"gsd": "scalar"}
    raw["heads"] = {"mask": {"classes": 3}, **heads}
    return raw


def test_heads_read_extra_inputs_and_earlier_heads(tmp_path):
    raw = _raw(
        tmp_path,
        height={"kind": "dense", "inputs": ["gsd"], "reads": ["mask"]},
        any={"kind": "class", "classes": 1, "inputs": ["gsd"], "reads": ["height"]},
    )
    torch.manual_seed(0)
    module = build_module(load_config(raw=raw)).eval()
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        low = module({"image": images, "gsd": torch.tensor([[0.3], [0.3]])})
        high = module({"image": images, "gsd": torch.tensor([[3.0], [3.0]])})
    assert torch.equal(low["mask"], high["mask"])  # the mask head does not read gsd
    assert not torch.allclose(low["height"], high["height"])
    assert not torch.allclose(low["any"], high["any"])
    # gsd is one more input channel of the dense head's conv (decoder 8 + gsd 1 + mask 3).
    assert module.model.heads["height"].conv.in_channels == 8 + 1 + 3


def test_training_step_takes_extra_inputs_from_the_batch(tmp_path):
    raw = _raw(tmp_path, height={"kind": "dense", "inputs": ["gsd"]})
    module = build_module(load_config(raw=raw))
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8),
        "mask": torch.randint(0, 3, (2, 32, 32), generator=g, dtype=torch.uint8),
        "height": torch.randn(2, 1, 32, 32, generator=g),
        "inputs": {"gsd": torch.tensor([[0.5], [1.5]])},
    }
    assert torch.isfinite(module.training_step(batch, 0))
    del batch["inputs"]
    with pytest.raises(ValueError, match="reads inputs \\['gsd'\\]"):
        module.training_step(batch, 0)


def test_class_head_pools_a_chosen_encoder_depth(tmp_path):
    raw = _raw(tmp_path, shallow={"kind": "class", "classes": 1, "depth": 2})
    module = build_module(load_config(raw=raw))
    channels = module.model.encoder.out_channels[2]
    assert module.model.heads["shallow"].head[3].in_features == channels


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"height": {"kind": "dense", "inputs": ["dem"]}}, "heads.height.inputs: 'dem'.*gsd"),
        (
            {"height": {"kind": "dense", "reads": ["later"]}, "later": {"kind": "dense"}},
            "heads.height.reads: 'later' is not a head listed before",
        ),
        ({"height": {"kind": "dense", "classes": 3}}, "heads.height.classes: unknown key"),
        ({"height": {"kind": "dens"}}, "heads.height.*'class', 'dense', 'mask'"),
    ],
)
def test_wiring_errors_name_the_head_and_the_key(tmp_path, heads, message):
    with pytest.raises(ConfigError, match=message):
        load_config(raw=_raw(tmp_path, **heads))
