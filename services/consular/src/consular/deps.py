"""What every router of the service needs from the request: the service and identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from consular.resources import Consular
from diaspora_identity.http import Identity


def service_of(request: Request) -> Consular:
    service: Consular = request.app.state.service
    return service


ServiceDep = Annotated[Consular, Depends(service_of)]


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


IdentityDep = Annotated[Identity, Depends(identity_of)]
