"""Lightning's notices (tips, "GPU available", seed lines) stay out of a podium run's output."""

from __future__ import annotations

import logging

from podium.config import load_config
from podium.workflows.fit import train


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_run_prints_no_lightning_tips_or_notices(tiny_config):
    tiny_config["trainer"]["max_epochs"] = 1
    seen = _Records()
    loggers = [logging.getLogger("lightning.pytorch"), logging.getLogger("lightning.fabric")]
    for logger in loggers:
        logger.addHandler(seen)
    try:
        train(load_config(raw=tiny_config))
    finally:
        for logger in loggers:
            logger.removeHandler(seen)
    text = "\n".join(seen.messages)
    for notice in ("Tip:", "GPU available", "Seed set to", "was configured so"):
        assert notice not in text, text
