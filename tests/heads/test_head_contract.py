"""Every registered head kind keeps the same contract; a new kind is tested with no new code.

For each kind in HEADS (built from its `example` YAML, beside a mask head so kinds that read
one have it): the model builds; one CPU training step lowers nothing to NaN and moves the
weights; a checkpoint round trip gives the same outputs; augment ∘ deaugment is the identity
for every D4 element; validation metrics compute; the writer puts a file on disk.
"""

from __future__ import annotations

import pytest
import torch

from podium.build import build_module
from podium.build.checkpoint import load_module
from podium.config import load_config
from podium.geometry import D4
from podium.heads import HEADS, WriteContext
from tests.conftest import tiny_config_dict

ALL_D4 = [D4(rot, flip) for flip in (False, True) for rot in range(4)]
SIZE = (32, 32)


def _config(tmp_path, kind: str):
    raw = tiny_config_dict(tmp_path, tmp_path / "runs")
    raw["model"]["encoder_name"] = "tu-lcnet_035"  # small checkpoints: fast round trips
    raw["model"]["kwargs"] = {"decoder_channels": [16, 8, 8, 8, 8]}
    raw["heads"] = {"mask": {"kind": "mask", "classes": 3}}
    if kind != "mask":
        raw["heads"]["probe"] = {"kind": kind, **HEADS.get(kind).example}
    return load_config(raw=raw)


def _batch(module, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {"image": torch.randint(0, 256, (2, 3, *SIZE), generator=g, dtype=torch.uint8)}
    for head in module.heads.values():
        batch.update(head.random_target(2, SIZE, g))
    return batch


def _probe(config) -> str:
    return "probe" if "probe" in config.heads else "mask"


@pytest.mark.parametrize("kind", HEADS.names())
def test_builds_and_gives_the_documented_shape(tmp_path, kind):
    config = _config(tmp_path, kind)
    module = build_module(config).eval()
    head = config.heads[_probe(config)]
    out = module(_batch(module)["image"])[head.name]
    expected = (2, head.out_channels, *SIZE) if head.spatial else (2, head.out_channels)
    assert out.shape == expected


@pytest.mark.parametrize("kind", HEADS.names())
def test_one_training_step_learns_and_metrics_compute(tmp_path, kind):
    config = _config(tmp_path, kind)
    torch.manual_seed(0)
    module = build_module(config)
    name = _probe(config)
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in module.model.heads[name].parameters()]
    loss = module.training_step(_batch(module), 0)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    after = list(module.model.heads[name].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "the head did not train"
    module.eval()
    with torch.no_grad():
        module.validation_step(_batch(module, seed=1), 0)
    values = module.val_metrics[name].compute()
    assert set(values) == set(config.heads[name].metric_names())
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in values.values())


@pytest.mark.parametrize("kind", HEADS.names())
def test_checkpoint_round_trip_gives_the_same_outputs(tmp_path, kind):
    config = _config(tmp_path, kind)
    module = build_module(config).eval()
    path = tmp_path / "model.ckpt"
    torch.save(
        {"state_dict": module.state_dict(), "podium_config": config.model_dump(mode="json")}, path
    )
    _, loaded = load_module(path, device="cpu")
    images = _batch(module)["image"]
    with torch.no_grad():
        ours, theirs = module(images), loaded(images)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name])


@pytest.mark.parametrize("t", ALL_D4, ids=lambda t: t.name)
@pytest.mark.parametrize("kind", HEADS.names())
def test_deaugment_undoes_augment(tmp_path, kind, t):
    config = _config(tmp_path, kind)
    head = config.heads[_probe(config)]
    shape = (2, head.out_channels, 5, 7) if head.spatial else (2, head.out_channels)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    there = head.augment(x, t)
    if head.spatial and t.swaps_hw:
        assert there.shape[-2:] == (7, 5)
    torch.testing.assert_close(head.deaugment(there, t), x)


@pytest.mark.parametrize("kind", HEADS.names())
def test_writes_its_output(tmp_path, kind):
    config = _config(tmp_path, kind)
    module = build_module(config).eval()
    head = config.heads[_probe(config)]
    images = _batch(module)["image"]
    with torch.no_grad():
        output = head.activate(module(images)[head.name])[0]
    out_dir = tmp_path / "out"
    image = images[0].permute(1, 2, 0).numpy()
    head.write(out_dir, "sample", head.decode(output), WriteContext(image))
    written = [p for p in out_dir.rglob("*") if p.is_file()]
    assert written and all(p.stat().st_size > 0 for p in written)
    assert any("sample" in p.name for p in written)
    assert not [p for p in written if p.name.endswith(".tmp")]
