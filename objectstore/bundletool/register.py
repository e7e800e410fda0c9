"""Registering an uploaded bundle through the EC2 API, and waiting for the registry to finish with it."""

from twisted.internet import task

from objectstore.bundletool.transport import ToolError

POLL_SECONDS = 1.0
SETTLED = ("available", "failed")


class RegistrationFailed(ToolError):
    """The registry gave up on the image; the message says why."""


async def wait_until_settled(ec2, s3, image_id, *, reactor, bar=None, interval=POLL_SECONDS):
    """Poll until *image_id* is available (returned) or failed (RegistrationFailed with the reason).

    The state comes from DescribeImages; how far an image in flight has got
    comes from the registry's own listing, when the server offers one.
    """
    shown_progress = True
    while True:
        image = await ec2.image_state(image_id)
        if bar is not None:
            bar.set_description_str(f"{image_id} {image.state}")
            if image.state == "available":
                bar.update(bar.total - bar.n)
            elif shown_progress:
                shown_progress = await _show_progress(s3, image_id, bar)
        if image.state == "failed":
            raise RegistrationFailed(f"{image_id} failed: {image.reason or 'the registry gave no reason'}")
        if image.state in SETTLED:
            return image
        await task.deferLater(reactor, interval, lambda: None)


async def _show_progress(s3, image_id, bar):
    """Move *bar* to the registry's figure; False if the server has none to give (stop asking)."""
    try:
        progress = await s3.image_progress(image_id)
    except (ToolError, ValueError):
        return False
    if progress is not None and progress > bar.n:
        bar.update(progress - bar.n)
    return True
