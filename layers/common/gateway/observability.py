"""Logger and Metrics shared by all functions.

No Powertools Tracer: importing the X-Ray SDK costs ~450 ms of cold start. See docs/decisions.md D4.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

logger = Logger(utc=True)
# A default namespace: without one, flushing metrics raises after the work is done (a stored webhook message
# would answer 500). Happens when POWERTOOLS_METRICS_NAMESPACE is unset, or set only after this import (tests).
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "WhatsAppGateway")
