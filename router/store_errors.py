"""Object-store errors in one short line: pyarrow's and botocore's, and which are worth a resume.

Shared by the model fetch and pinned reads (:mod:`modelrouter.remote`) and the engine's
storage layer (:mod:`modelrouter.storage.object_store`): a failure is reported as the role's
error naming the URI and this reason (docs/remote-storage.md).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["client_code", "is_cut", "reason"]


def client_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_cut(exc: BaseException) -> bool:
    """A connection dropped or timed out mid-body (botocore/urllib3), worth resuming."""
    return type(exc).__name__ in (
        "ResponseStreamingError",
        "IncompleteReadError",
        "ProtocolError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "EndpointConnectionError",
        "IncompleteRead",
    ) or isinstance(exc, ConnectionError)


# pyarrow's AWS errors: "AWS Error ACCESS_DENIED during GetObject operation: …".
_AWS_ERROR = re.compile(r"AWS Error (\w+)(?: \(HTTP status code: (\d+)\))?")
_REASONS = {
    "ACCESS_DENIED": "access denied",
    "INVALID_ACCESS_KEY_ID": "access denied (unknown access key id)",
    "SIGNATURE_DOES_NOT_MATCH": "access denied (the secret key does not match)",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "NO_SUCH_KEY": "not found",
    "RESOURCE_NOT_FOUND": "not found",
    "NETWORK_CONNECTION": "cannot reach the store (connection failed)",
    "REQUEST_TIMEOUT": "cannot reach the store (timed out)",
    "SLOW_DOWN": "the store is throttling requests (SlowDown), even after retries",
    "THROTTLING": "the store is throttling requests, even after retries",
}
_CLIENT_CODES = {
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "access denied (unknown access key id)",
    "SignatureDoesNotMatch": "access denied (the secret key does not match)",
    "AllAccessDisabled": "access denied",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "not found",
    "404": "not found",
    "403": "access denied",
    "SlowDown": "the store is throttling requests (SlowDown), even after retries",
}


def reason(exc: BaseException) -> str:
    """One short line saying why a store operation failed (pyarrow or botocore errors)."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        return _CLIENT_CODES.get(code, f"{code}: {error.get('Message', '')}".strip(": "))
    kind = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if kind == "NoCredentialsError":
        return "no AWS credentials found"
    if kind in (
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
    ):
        return f"cannot reach the store ({_first_line(exc)})"
    text = _first_line(exc)
    found = _AWS_ERROR.search(text)
    if found:
        code = found.group(1)
        if code == "NETWORK_CONNECTION" and "partial file" in text:  # curl 18: the body was cut
            return "connection dropped mid-transfer, even after retries"
        if code in _REASONS:
            return _REASONS[code]
        if found.group(2) == "403":
            return "access denied"
        if found.group(2) == "404":
            return "not found"
        detail = text.split("operation:", 1)[-1].strip()
        return f"{code.lower().replace('_', ' ')} ({detail})" if detail else code.lower()
    if "Bucket" in text and ("does not exist" in text or "not found" in text):
        return "the bucket does not exist"
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
