"""HEADS: head kind name → its HeadBase subclass (filled by importing podium.heads)."""

from podium.registry import Registry

__all__ = ["HEADS"]

HEADS: Registry = Registry("head kind")
