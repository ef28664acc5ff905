"""Benchmarks of event delivery and ``cs`` start-up, run against a real ``nats-server``.

Owns nothing of the product: every bench drives ``cloudstation`` the way users do (the ``Publisher``
in-process, the ``cs`` console script as a subprocess) and measures a baseline in the same run, so the
figures are ratios that survive a noisy, shared machine. Nothing here asserts a timing.

Run all: ``python -m bench``; one: ``python -m bench.delivery`` or ``python -m bench.startup``.
"""
