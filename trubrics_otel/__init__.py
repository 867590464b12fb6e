"""Trubrics-style product analytics for AI apps, built on OpenTelemetry."""
