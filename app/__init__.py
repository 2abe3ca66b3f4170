"""The service: a hello-world Quart app on Hypercorn, hardened for the public internet.

Run it with ``python -m app``; probe it with ``python -m app.healthcheck``. This file imports
nothing on purpose: the health probe runs in a shell-less image every few seconds and must not
pay for Quart's import.
"""
