"""Group schemas: teams and resolution groups of people, and their members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import EmailStr, Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

GroupKind = Literal["team", "resolution"]


class GroupCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200, description="Unique name")
    kind: GroupKind = Field(default="team", description="A team, or a resolution group that "
                            "works failed operations")
    description: str | None = Field(default=None, max_length=2000)
    email: EmailStr | None = Field(default=None, description="Shared mailbox of the group")
    owner_id: uuid.UUID | None = Field(default=None, description="Identity that owns the group")


class GroupUpdate(StrictIn):
    """Partial update: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: GroupKind | None = None
    description: str | None = Field(default=None, max_length=2000)
    email: EmailStr | None = None
    owner_id: uuid.UUID | None = None


class GroupRead(ReadModel):
    id: uuid.UUID
    name: str
    kind: str
    description: str | None
    email: str | None
    owner_id: uuid.UUID | None
    member_count: int = Field(description="How many identities belong to the group")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, group: Any, member_count: int) -> GroupRead:
        """Read a group row together with its member count."""
        data = {name: getattr(group, name) for name in cls.model_fields if name != "member_count"}
        return cls(member_count=member_count, **data)


GroupPage = PageOut[GroupRead]


class GroupFilter(ListParams):
    kind: GroupKind | None = None
    q: str | None = Field(default=None, description="Substring of the name or description")


class MemberAdd(StrictIn):
    identity_id: uuid.UUID


class GroupMemberRead(ReadModel):
    group_id: uuid.UUID
    identity_id: uuid.UUID
