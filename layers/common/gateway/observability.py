"""Logger and Metrics shared by all functions.

No Powertools Tracer: importing the X-Ray SDK costs ~450 ms of cold start. Functions run with
``Tracing: Active`` instead, which records the Lambda and AWS-call segments without the SDK (docs/decisions.md).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(utc=True)
metrics = Metrics()
