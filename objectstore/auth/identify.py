"""Which access key a request claims to use (AWS Signature V2 or V4).

This names the caller; verifying the signature is the signer's job.
"""

from objectstore.errors import InvalidArgument, S3Error


class Authenticated:
    """Who a request acts for, and what of its signature is left to check in its body."""

    def __init__(self, caller, chunk_observers=()):
        self.caller = caller
        self._chunk_observers = list(chunk_observers)

    def chunk_observers(self):
        """Observers an aws-chunked body must pass (see web/awschunked.py)."""
        return list(self._chunk_observers)


class AuthorizationHeaderMalformed(S3Error):
    code = "AuthorizationHeaderMalformed"
    status = 400
    message = "The authorization header is malformed."


def claimed_access_key(authorization, args):
    """The access key of the Authorization header or presigned query; None if anonymous.

    *authorization* is the header's text (or None); *args* the query as
    ``{bytes: [bytes]}``.
    """
    if authorization:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme == "AWS":
            key, sep, signature = rest.strip().rpartition(":")
            if not sep or not key or not signature:
                raise InvalidArgument("Authorization header is invalid -- one and only one ' ' (space) required")
            return key
        if scheme == "AWS4-HMAC-SHA256":
            fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
            credential = fields.get("Credential")
            if not credential or "/" not in credential:
                raise AuthorizationHeaderMalformed()
            return credential.split("/", 1)[0]
        raise InvalidArgument(
            "Unsupported Authorization Type", ArgumentName="Authorization", ArgumentValue=authorization
        )
    if b"AWSAccessKeyId" in args:
        return args[b"AWSAccessKeyId"][-1].decode("utf-8", "replace")
    if b"X-Amz-Credential" in args:
        credential = args[b"X-Amz-Credential"][-1].decode("utf-8", "replace")
        if "/" not in credential:
            raise InvalidArgument("Error parsing the X-Amz-Credential parameter", ArgumentName="X-Amz-Credential")
        return credential.split("/", 1)[0]
    return None
