"""A pass-through node for tests that need to see which requests reach upstream."""

from __future__ import annotations

import daskseg as gp


class Recorder(gp.BatchFilter):
    """Pass-through node that remembers (copies of) the requests it received."""

    def __init__(self):
        self.requests: list[gp.BatchRequest] = []

    def prepare(self, request):
        self.requests.append(request.copy())
