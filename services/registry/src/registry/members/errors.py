"""What the member use cases refuse: the exceptions their callers answer."""

from __future__ import annotations

from uuid import UUID


class MemberNotFound(Exception):
    """No member with this id within the caller's scope."""


class VersionMismatch(Exception):
    """If-Match named another version of the record than the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


class ConsentNotRecorded(Exception):
    """Staff filed a registration without attesting how the person consented."""


class InvalidChange(ValueError):
    """A change the profile cannot take (e.g. clearing a required field, an unknown city)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class AlreadyRegistered(Exception):
    """The caller's identity is already linked to a member."""

    def __init__(self, member_id: UUID) -> None:
        super().__init__(str(member_id))
        self.member_id = member_id


class OutsideJurisdiction(Exception):
    """A staff member tried to register someone their grant does not reach (an officer:
    someone living outside their embassies' jurisdiction). Never a self-registration."""
