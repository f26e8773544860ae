"""Sample events, shaped as AWS (and MinIO) send them, to try a function with ``run``.

``generate(kind, ...)`` builds one event of ``KINDS``: an S3 or MinIO bucket notification
for an object, that notification wrapped in an SQS message or an SNS notification, the
EventBridge "Object Created" event, or an HTTP request as API Gateway (REST, payload 1.0;
HTTP API, payload 2.0) or a function URL delivers it.  Object keys are encoded as each
sender encodes them (URL-encoded in bucket notifications, as they are in EventBridge), so
that ``supervisor.events.parse`` reads back the key given here.  Identifiers (account,
request and message ids) are made up; times are ``when`` (now by default).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, quote_plus, urlencode

__all__ = ["KINDS", "OBJECT_KINDS", "Sample", "generate"]

# The made-up account that owns the sample queue, topic and API.
ACCOUNT: Final = "123456789012"


@dataclass(frozen=True)
class Sample:
    """What an event says: an object (bucket, key, size) or an HTTP request (method, path,
    query, body), where (region) and when (a Unix time)."""

    bucket: str = "example-bucket"
    key: str = "incoming/example.txt"
    size: int = 1024
    region: str = "us-east-1"
    method: str = "POST"
    path: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    when: float | None = None

    @property
    def moment(self) -> float:
        return time.time() if self.when is None else self.when


def _iso(moment: float, *, millis: bool = True) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return f"{stamp}.{int(moment * 1000) % 1000:03d}Z" if millis else f"{stamp}Z"


def _clf(moment: float) -> str:
    """The request time API Gateway writes: ``28/Nov/2026:10:00:00 +0000``."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(moment))


def _etag(sample: Sample) -> str:
    return hashlib.md5(f"{sample.bucket}/{sample.key}".encode(), usedforsecurity=False).hexdigest()


def _sequencer(moment: float) -> str:
    return f"{int(moment * 1e9):016X}"


def _s3_record(sample: Sample, source: str, encoded_key: str) -> dict[str, Any]:
    moment = sample.moment
    return {
        "eventVersion": "2.1",
        "eventSource": source,
        "awsRegion": sample.region,
        "eventTime": _iso(moment),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "sample-notification",
            "bucket": {
                "name": sample.bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{sample.bucket}",
            },
            "object": {
                "key": encoded_key,
                "size": sample.size,
                "eTag": _etag(sample),
                "sequencer": _sequencer(moment),
            },
        },
    }


def s3(sample: Sample) -> dict[str, Any]:
    """An S3 bucket notification (``s3:ObjectCreated:Put``); the key URL-encoded, a space
    as ``+``, as S3 writes it."""
    return {"Records": [_s3_record(sample, "aws:s3", quote_plus(sample.key, safe="/"))]}


def minio(sample: Sample) -> dict[str, Any]:
    """A MinIO bucket notification (as an OSCAR service gets it): the S3 shape with
    ``eventSource`` ``minio:s3``, the key query-escaped, and the top-level ``EventName`` and
    ``Key`` (bucket/key) of MinIO's webhook."""
    record = _s3_record(sample, "minio:s3", quote_plus(sample.key, safe=""))
    record["eventName"] = "s3:ObjectCreated:Put"
    record["awsRegion"] = ""
    record["userIdentity"] = {"principalId": "minio"}
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{sample.bucket}/{sample.key}",
        "Records": [record],
    }


def sqs(sample: Sample) -> dict[str, Any]:
    """One SQS message, delivered by Lambda's SQS integration, whose body is the S3
    notification the bucket sent to the queue."""
    body = json.dumps(s3(sample))
    sent = str(int(sample.moment * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(uuid.uuid4().bytes).decode(),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": sent,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{sample.region}:{ACCOUNT}:{sample.bucket}-events",
                "awsRegion": sample.region,
            }
        ]
    }


def sns(sample: Sample) -> dict[str, Any]:
    """One SNS notification whose message is the S3 notification the bucket published."""
    topic = f"arn:aws:sns:{sample.region}:{ACCOUNT}:{sample.bucket}-events"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Subject": "Amazon S3 Notification",
                    "Message": json.dumps(s3(sample)),
                    "Timestamp": _iso(sample.moment),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.example.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.example.com/unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def eventbridge(sample: Sample) -> dict[str, Any]:
    """The ``Object Created`` event S3 sends to EventBridge (the key as it is)."""
    moment = sample.moment
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": _iso(moment, millis=False),
        "region": sample.region,
        "resources": [f"arn:aws:s3:::{sample.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": sample.bucket},
            "object": {
                "key": sample.key,
                "size": sample.size,
                "etag": _etag(sample),
                "sequencer": _sequencer(moment),
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def _body(sample: Sample) -> tuple[str | None, bool]:
    """The body as API Gateway passes it: text as it is, other bytes in base64."""
    if not sample.body:
        return None, False
    try:
        return sample.body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(sample.body).decode("ascii"), True


def _headers(sample: Sample) -> dict[str, str]:
    headers = {"accept": "*/*", "user-agent": "curl/8.5.0"}
    if sample.body:
        text = _body(sample)[1] is False
        headers["content-type"] = "text/plain" if text else "application/octet-stream"
        headers["content-length"] = str(len(sample.body))
    return headers


def api(sample: Sample) -> dict[str, Any]:
    """An API Gateway REST API request (Lambda proxy integration, payload 1.0)."""
    body, encoded = _body(sample)
    headers = {name.title(): value for name, value in _headers(sample).items()}
    query = dict(sample.query)
    moment = sample.moment
    return {
        "resource": "/{proxy+}",
        "path": sample.path,
        "httpMethod": sample.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {n: [v] for n, v in query.items()} or None,
        "pathParameters": {"proxy": sample.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "sampleapi",
            "resourcePath": "/{proxy+}",
            "httpMethod": sample.method,
            "path": f"/prod{sample.path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": _clf(moment),
            "requestTimeEpoch": int(moment * 1000),
            "stage": "prod",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers["User-Agent"]},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _http_v2(sample: Sample, *, route: str, api_id: str, domain: str) -> dict[str, Any]:
    body, encoded = _body(sample)
    moment = sample.moment
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": quote(sample.path),
        "rawQueryString": urlencode(sample.query),
        "headers": {**_headers(sample), "host": domain},
    }
    if sample.query:
        event["queryStringParameters"] = dict(sample.query)
    event["requestContext"] = {
        "accountId": ACCOUNT,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "http": {
            "method": sample.method,
            "path": sample.path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "curl/8.5.0",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route,
        "stage": "$default",
        "time": _clf(moment),
        "timeEpoch": int(moment * 1000),
    }
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def api_v2(sample: Sample) -> dict[str, Any]:
    """An API Gateway HTTP API request (payload 2.0), on a route ``METHOD /{proxy+}``."""
    domain = f"sampleapi.execute-api.{sample.region}.amazonaws.com"
    return _http_v2(sample, route=f"{sample.method} /{{proxy+}}", api_id="sampleapi", domain=domain)


def url(sample: Sample) -> dict[str, Any]:
    """A function URL request (payload 2.0, route ``$default``)."""
    url_id = "abcdefghijklmnopqrstuvwxyz012345"
    domain = f"{url_id}.lambda-url.{sample.region}.on.aws"
    return _http_v2(sample, route="$default", api_id=url_id, domain=domain)


_GENERATORS: Final[dict[str, Callable[[Sample], dict[str, Any]]]] = {
    "s3": s3,
    "minio": minio,
    "sqs": sqs,
    "sns": sns,
    "eventbridge": eventbridge,
    "api": api,
    "api-v2": api_v2,
    "url": url,
}
KINDS: Final = tuple(_GENERATORS)
# The kinds that announce an object in a bucket (the others carry an HTTP request).
OBJECT_KINDS: Final = ("s3", "minio", "sqs", "sns", "eventbridge")


def generate(kind: str, sample: Sample) -> dict[str, Any]:
    """The event of ``kind`` (one of ``KINDS``) for ``sample``; ``ValueError`` for another."""
    try:
        generator = _GENERATORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown event kind {kind!r}: expected one of {', '.join(KINDS)}"
        ) from None
    return generator(sample)
