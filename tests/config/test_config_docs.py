"""The README's config reference is generated from the pydantic models and kept in sync."""

from pathlib import Path

from podium.config.docs import END, START, config_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_reference_is_current():
    text = README.read_text()
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == config_reference().strip(), (
        "README config reference is stale: run `python -m podium.config.docs --write`"
    )


def test_reference_lists_every_section_and_key():
    ref = config_reference()
    for key in (
        "`data.classes`",
        "`data.train.images`",
        "`data.root`",
        "`model.encoder_name`",
        "`heads.<name>.activation`",
        "`trainer.monitor`",
        "`inference.batch_size`",
    ):
        assert key in ref, key
