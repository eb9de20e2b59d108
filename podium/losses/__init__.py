"""Loss zoo by name; heads combine weighted terms. See `build_loss`."""

from podium.losses.core import LOSSES, CombinedLoss, LossContext, build_loss

__all__ = ["LOSSES", "CombinedLoss", "LossContext", "build_loss"]

# Importing the modules fills the registry.
from podium.losses import classification, overlap, regression, soft_dice  # noqa: E402,F401
