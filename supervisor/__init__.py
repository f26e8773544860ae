"""serverless-supervisor: run a user's file-processing script for an event, in AWS Lambda,
in AWS Batch or locally, with the data staged in and out and a watchdog on the deadline."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
