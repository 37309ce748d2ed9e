"""What every router of the service needs from the request: the service and identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from diaspora_identity.http import Identity
from returnees.resources import Returnees


def service_of(request: Request) -> Returnees:
    service: Returnees = request.app.state.service
    return service


ServiceDep = Annotated[Returnees, Depends(service_of)]


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


IdentityDep = Annotated[Identity, Depends(identity_of)]
