"""Inbound processor: fed by the messages table's DynamoDB stream (DESIGN §1, §4).

Media to S3, auto-replies and events for every stored inbound message, ``message.status_changed`` for
outbound messages (services.inbound has the rules). Records that fail are reported one by one
(``ReportBatchItemFailures``); Lambda retries from the first of them, bisecting, then dead-letters the batch's
metadata to the DLQ, from which ``make replay`` re-drives it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.observability import logger, metrics
from gateway.services.inbound import InboundProcessor, RetryableError

# The API's own URL, for Twilio status callbacks of auto-replies when PUBLIC_BASE_URL is empty (read at cold
# start: template.yaml sets it for this function only).
EXECUTE_API_URL = os.environ.get("EXECUTE_API_URL", "")

# Every failed record is reported (never an exception for "all failed"): Lambda retries from the first one.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


@lru_cache(maxsize=1)
def service() -> InboundProcessor:
    ready()
    return InboundProcessor(fallback_base_url=EXECUTE_API_URL)


def record_handler(record: DynamoDBRecord) -> str:
    raw = record.raw_event
    stream = raw.get("dynamodb") or {}
    log = {"event_id": raw.get("eventID"), "event_name": raw.get("eventName"),
           "sequence_number": stream.get("SequenceNumber")}
    try:
        outcome = service().handle_record(raw)
    except RetryableError as error:
        metrics.add_metric(name="InboundRecordRetry", unit="Count", value=1)
        logger.warning("stream record will be retried", extra={**log, "reason": str(error)})
        raise
    except Exception:
        metrics.add_metric(name="InboundRecordFailed", unit="Count", value=1)
        logger.exception("stream record failed", extra=log)
        raise
    logger.debug("stream record done", extra={**log, "outcome": outcome})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    return dict(response)
