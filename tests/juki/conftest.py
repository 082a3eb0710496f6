"""住基ネット fixtures: the copy fed by the registry's real events through a dispatcher that
delivers to 住基ネット alone (the process-wide dispatcher may carry other subscribers)."""

from __future__ import annotations

import pytest

from mynumber.app import Container
from mynumber.juki.events import subscriber
from mynumber.kernel.events import Dispatcher

PENSION = "japan_pension_service"
KYOKAI = "kyokai_kenpo"
UNLISTED = "db-sample-1"  # a corporate pension sponsor: not in 住基法 別表


class Feed:
    def __init__(self, container: Container) -> None:
        self.dispatcher = Dispatcher(container.registry.outbox,
                                     [subscriber(container.juki, container.registry)],
                                     owner="juki-tests")

    def deliver(self) -> int:
        return self.dispatcher.drain()


@pytest.fixture
def feed(container: Container) -> Feed:
    return Feed(container)
