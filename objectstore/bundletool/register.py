"""Waiting for the registry to finish with a registered bundle."""

import time

from twisted.internet import task

from objectstore.bundletool.transport import ToolError

POLL_SECONDS = 1.0
IN_FLIGHT = ("pending", "decrypting", "untarring")


class RegistrationFailed(ToolError):
    """The registry gave up on the image; the message says why."""


async def wait_until_settled(ec2, s3, image_id, *, reactor, bar=None, interval=POLL_SECONDS, timeout=None):
    """Poll until *image_id* is available (returned) or failed (RegistrationFailed with the reason).

    The state comes from DescribeImages; how far an image in flight has got
    comes from the registry's own listing, when the server offers one. A
    state the tool does not know, or *timeout* seconds passing, end the wait
    with a ToolError.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    ask_progress = True
    while True:
        image = await ec2.image_state(image_id)
        if bar is not None:
            bar.set_description_str(f"{image_id} {image.state}")
            if image.state == "available":
                bar.update(bar.total - bar.n)
            elif ask_progress:
                ask_progress = await _show_progress(s3, image_id, bar)
        if image.state == "available":
            return image
        if image.state == "failed":
            raise RegistrationFailed(f"{image_id} failed: {image.reason or 'the registry gave no reason'}")
        if image.state not in IN_FLIGHT:
            raise ToolError(f"{image_id} is in a state the tool does not know: {image.state!r}")
        if deadline is not None and time.monotonic() > deadline:
            raise ToolError(f"{image_id} is still {image.state} after {timeout:g} s; stopped waiting")
        await task.deferLater(reactor, interval, lambda: None)


async def _show_progress(s3, image_id, bar):
    """Move *bar* to the registry's figure; False if the server has none to give (stop asking)."""
    try:
        progress = await s3.image_progress(image_id)
    except ToolError:
        return False
    if not isinstance(progress, int):
        return progress is None  # None: not known yet; anything else: not a server that says
    if progress > bar.n:
        bar.update(min(progress, bar.total) - bar.n)
    return True
