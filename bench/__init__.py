"""Benchmarks of openclaw-sidecar beside reference proxies; never run as tests.

See docs/benchmarks.md.
"""
