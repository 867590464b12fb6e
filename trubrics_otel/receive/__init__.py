"""Telemetry from outside the process: OTLP decoding, the receivers and the bridge."""
