"""S3Site: the HTTP factory that puts S3Request, S3Channel and the access log together."""

from twisted.web import server

from objectstore.web.access_log import access_log_line
from objectstore.web.channel import s3_channel
from objectstore.web.limits import ConnectionLimits, Connections
from objectstore.web.request import S3Request


class S3Site(server.Site):
    """The HTTP site; *access_log*: a file path, "-" for the twistd log, or None for none.

    Access logging is off unless asked for: formatting and writing a line
    per request costs about a tenth of a small GET.
    """

    requestFactory = S3Request
    protocol = s3_channel
    # Idle connections go away after a minute (slowloris); a request being
    # processed is not subject to it.
    timeOut = 60
    # No "Starting factory <S3Site object at 0x…>" lines: the server logs where it serves (service.Server).
    noisy = False

    def __init__(
        self, resource, *args, access_log=None, logFormatter=access_log_line, limits=ConnectionLimits(), **kwargs
    ):
        logPath = access_log if access_log not in (None, "-") else None
        super().__init__(resource, *args, logPath=logPath, logFormatter=logFormatter, **kwargs)
        self.access_log = access_log
        # How slowly and how many (see web/limits.py); the channels count themselves in and out.
        self.limits = limits
        self.connections = Connections(limits)

    def log(self, request):
        if self.access_log is not None:
            super().log(request)
