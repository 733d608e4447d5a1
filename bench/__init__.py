"""Benchmarks of the nightshard worker against a naive loop, Ray Data and the model-only ceiling."""
