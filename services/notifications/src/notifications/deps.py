"""FastAPI dependencies handing a route the service's handles (set by the app's lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from diaspora_identity.http import Identity
from notifications.resources import Notifications


def service(request: Request) -> Notifications:
    handles: Notifications = request.app.state.service
    return handles


def identity(request: Request) -> Identity:
    found: Identity = request.app.state.identity
    return found


ServiceDep = Annotated[Notifications, Depends(service)]
IdentityDep = Annotated[Identity, Depends(identity)]
