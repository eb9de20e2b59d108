"""The build layer: the ONLY code that reads a Config.

It turns a validated Config into datasets, the DataModule, the model, heads and training
module, and inference objects; everything below it receives typed values.
"""

from podium.build.data import (
    PseudoMix,
    build_datamodule,
    class_presence,
    data_spec,
    dataset_for,
    mask_head,
    mask_reader,
    mask_target_key,
    split_samples,
)
from podium.build.model import (
    apply_init,
    build_device_augment,
    build_module,
    build_podium_model,
    configure_optimization,
    schedule_callbacks,
    use_channels_last,
    use_compile,
)

__all__ = [
    "PseudoMix",
    "apply_init",
    "build_datamodule",
    "build_device_augment",
    "build_module",
    "class_presence",
    "build_podium_model",
    "configure_optimization",
    "data_spec",
    "dataset_for",
    "mask_head",
    "mask_reader",
    "mask_target_key",
    "schedule_callbacks",
    "split_samples",
    "use_channels_last",
    "use_compile",
]
