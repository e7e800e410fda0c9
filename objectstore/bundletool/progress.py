"""Progress bars on stderr (tqdm), shown only when stderr is a terminal.

A bar that is not shown still takes every call, so the commands never ask
whether one is shown.
"""

import sys

from tqdm import tqdm


def byte_bar(description, total=None, enabled=True):
    """A bar counting bytes (shown as KB/MB/GB with a rate)."""
    return tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=_disabled(enabled),
        leave=True,
        dynamic_ncols=True,
    )


def percent_bar(description, enabled=True):
    """A bar from 0 to 100 whose description can change (registration: its state)."""
    return tqdm(
        total=100,
        desc=description,
        unit="%",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]",
        file=sys.stderr,
        disable=_disabled(enabled),
        leave=True,
        dynamic_ncols=True,
    )


def _disabled(enabled):
    # tqdm's disable=None: off unless its file is a terminal.
    return None if enabled else True
