"""Training engine: Lightning module, data module, callbacks and the fit loop."""
