"""The image builder's tools: standard library only, run as ``python3 -m builder``."""
