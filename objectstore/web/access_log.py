"""The access log's line: Twisted's combined format, with the bearer parts of presigned URLs redacted."""

import re

from twisted.web.http import combinedLogFormatter

# Query parameters that grant access on their own (presigned URLs): an access
# log that kept them would hand out a working URL to anyone who reads it.
_BEARER_PARAMETERS = re.compile(rb"([?&](?:X-Amz-Signature|Signature|X-Amz-Security-Token)=)[^&]*", re.IGNORECASE)


def redact_query(uri):
    return _BEARER_PARAMETERS.sub(rb"\1REDACTED", uri)


class _RedactedRequest:
    """A request as the access log sees it: the same, but for its signature and its referrer's."""

    def __init__(self, request):
        self._request = request
        self.uri = redact_query(request.uri)

    def getHeader(self, name):
        value = self._request.getHeader(name)
        # A page that linked to a presigned URL may itself be one.
        if value is not None and name.lower() == b"referer":
            return redact_query(value)
        return value

    def __getattr__(self, name):
        return getattr(self._request, name)


def access_log_line(timestamp, request):
    """Twisted's combined log line, without presigned URL signatures."""
    return combinedLogFormatter(timestamp, _RedactedRequest(request))
