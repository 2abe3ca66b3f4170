"""Deliberately broken services: the real image with its app swapped (see test_canaries.py).

Each module here is copied into a variant of the project's image as ``/opt/canary/canary.py``
and run as its entrypoint (``python3 -m canary``) with the image's own Python, app and
settings: one thing is broken, the rest is the real service.
"""
