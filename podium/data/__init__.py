"""Datasets: folder formats, the bundled Blue Marble demo and synthetic generators for tests."""
