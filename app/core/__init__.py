"""Shared by the API and the worker: settings, logging, resilience, telemetry, metrics, audit."""
