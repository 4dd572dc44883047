"""/scim/v2: the SCIM 2.0 service provider (RFC 7644) for HR systems and administrators.

Thin endpoints: parse, authorise (scim:read / scim:write), call one service function,
answer ``application/scim+json`` with the resource's ETag. Every failure, authentication
included, is a SCIM Error message (:class:`idgov.scim.errors.ScimRoute`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from idgov.auth.caller import Caller
from idgov.scim import groups, schemas, service
from idgov.scim.errors import SCIM_JSON, ScimResponse, ScimRoute, not_found, remember_session
from idgov.scim.resources import project
from idgov.scim.service import ListQuery
from idgov.web.deps import ClockDep, DbSession, require

router = APIRouter(prefix="/scim/v2", tags=["scim"], route_class=ScimRoute)

Reader = Annotated[Caller, Depends(require("scim:read"))]
Writer = Annotated[Caller, Depends(require("scim:write"))]
ResourceBody = Annotated[dict[str, Any], Body(media_type=SCIM_JSON)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match")]


def scim_session(request: Request, session: DbSession) -> Any:
    """The request's unit of work, remembered so that a failed request is rolled back."""
    remember_session(request, session)
    return session


Session = Annotated[Any, Depends(scim_session)]

_DESCRIPTIONS = {
    304: "Not modified (If-None-Match)", 400: "Invalid request (SCIM scimType says why)",
    401: "Missing or invalid credentials", 403: "The caller may not do this",
    404: "No such resource", 409: "Uniqueness conflict", 412: "Version mismatch (If-Match)",
}


def scim_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: SCIM Error messages for ``codes`` (400, 401, 403 always)."""
    return {code: {"description": _DESCRIPTIONS[code],
                   "content": {SCIM_JSON: {}} if code != 304 else {}}
            for code in sorted({400, 401, 403, *codes})}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


def _answer(resource: dict[str, Any], status: int = 200, *, location: bool = False
            ) -> ScimResponse:
    headers = {"ETag": resource["meta"]["version"]}
    if location:
        headers["Location"] = resource["meta"]["location"]
    return ScimResponse(resource, status_code=status, headers=headers)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def _read(resource: dict[str, Any], query: ListQuery, if_none_match: str | None,
          kind: schemas.ResourceKind) -> Response:
    """One resource read: 304 when the client holds its version (If-None-Match), else the
    attributes ``query`` asks for; its ETag either way."""
    version = resource["meta"]["version"]
    if if_none_match and version in _split(if_none_match):
        return Response(status_code=304, headers={"ETag": version})
    shown = project(resource, attributes=query.attributes, excluded=query.excluded, kind=kind)
    return ScimResponse(shown, headers={"ETag": version})


def _query(filter_: str | None, start_index: int | None, count: int | None,
           sort_by: str | None, sort_order: str | None, attributes: str | None,
           excluded: str | None) -> ListQuery:
    return ListQuery(filter=filter_, start_index=start_index or 1, count=count,
                     sort_by=sort_by, sort_order=sort_order, attributes=_split(attributes),
                     excluded=_split(excluded))


def _listing(
    filter_: Annotated[str | None, Query(alias="filter")] = None,
    start_index: Annotated[int | None, Query(alias="startIndex")] = None,
    count: Annotated[int | None, Query(alias="count")] = None,
    sort_by: Annotated[str | None, Query(alias="sortBy")] = None,
    sort_order: Annotated[str | None, Query(alias="sortOrder")] = None,
    attributes: Annotated[str | None, Query(alias="attributes")] = None,
    excluded: Annotated[str | None, Query(alias="excludedAttributes")] = None,
) -> ListQuery:
    return _query(filter_, start_index, count, sort_by, sort_order, attributes, excluded)


Listing = Annotated[ListQuery, Depends(_listing)]


def _search(body: dict[str, Any]) -> ListQuery:
    def text(key: str) -> str | None:
        value = body.get(key)
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return None if value is None else str(value)

    def number(key: str) -> int | None:
        value = body.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return _query(text("filter"), number("startIndex"), number("count"), text("sortBy"),
                  text("sortOrder"), text("attributes"), text("excludedAttributes"))


# ---- discovery (RFC 7644 §4)


@router.get("/ServiceProviderConfig", responses=scim_responses())
def service_provider_config(request: Request, caller: Reader) -> ScimResponse:
    return ScimResponse(schemas.service_provider_config(_base(request)))


def _list_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [schemas.LIST_RESPONSE], "totalResults": len(resources),
            "startIndex": 1, "itemsPerPage": len(resources), "Resources": resources}


@router.get("/ResourceTypes", responses=scim_responses())
def resource_types(request: Request, caller: Reader) -> ScimResponse:
    base = _base(request)
    return ScimResponse(_list_of([schemas.resource_type_doc(k, base)
                                  for k in schemas.KINDS.values()]))


@router.get("/ResourceTypes/{name}", responses=scim_responses(404))
def resource_type(request: Request, caller: Reader, name: str) -> ScimResponse:
    kind = schemas.KINDS.get(name)
    if kind is None:
        raise not_found(f"ResourceType {name} does not exist")
    return ScimResponse(schemas.resource_type_doc(kind, _base(request)))


@router.get("/Schemas", responses=scim_responses())
def schema_list(request: Request, caller: Reader) -> ScimResponse:
    base = _base(request)
    return ScimResponse(_list_of([schemas.schema_doc(s, base) for s in schemas.SCHEMA_DOCS]))


@router.get("/Schemas/{schema_id}", responses=scim_responses(404))
def schema(request: Request, caller: Reader, schema_id: str) -> ScimResponse:
    if schema_id not in schemas.SCHEMA_DOCS:
        raise not_found(f"Schema {schema_id} does not exist")
    return ScimResponse(schemas.schema_doc(schema_id, _base(request)))


# ---- Users


@router.get("/Users", responses=scim_responses())
def list_users(request: Request, session: Session, caller: Reader,
               query: Listing) -> ScimResponse:
    return ScimResponse(service.list_users(session, query=query, base=_base(request)))


@router.post("/Users/.search", responses=scim_responses())
def search_users(request: Request, session: Session, caller: Reader,
                 body: ResourceBody) -> ScimResponse:
    return ScimResponse(service.list_users(session, query=_search(body), base=_base(request)))


@router.post("/Users", status_code=201, responses=scim_responses(409))
def create_user(request: Request, session: Session, caller: Writer, clock: ClockDep,
                body: ResourceBody) -> ScimResponse:
    user = service.create_user(session, body=body, base=_base(request), actor=caller.actor,
                               clock=clock)
    return _answer(user, 201, location=True)


@router.get("/Users/{user_id}", responses=scim_responses(304, 404))
def get_user(request: Request, session: Session, caller: Reader, user_id: str, query: Listing,
             if_none_match: IfNoneMatch = None) -> Response:
    return _read(service.get_user(session, user_id=user_id, base=_base(request)), query,
                 if_none_match, schemas.USER_KIND)


@router.put("/Users/{user_id}", responses=scim_responses(404, 409, 412))
def replace_user(request: Request, session: Session, caller: Writer, clock: ClockDep,
                 user_id: str, body: ResourceBody, if_match: IfMatch = None) -> ScimResponse:
    return _answer(service.replace_user(session, user_id=user_id, body=body, if_match=if_match,
                                        base=_base(request), actor=caller.actor, clock=clock))


@router.patch("/Users/{user_id}", responses=scim_responses(404, 409, 412))
def patch_user(request: Request, session: Session, caller: Writer, clock: ClockDep,
               user_id: str, body: ResourceBody, if_match: IfMatch = None) -> ScimResponse:
    return _answer(service.patch_user(session, user_id=user_id, body=body, if_match=if_match,
                                      base=_base(request), actor=caller.actor, clock=clock))


@router.delete("/Users/{user_id}", status_code=204, responses=scim_responses(404, 412))
def delete_user(request: Request, session: Session, caller: Writer, clock: ClockDep,
                user_id: str, if_match: IfMatch = None) -> Response:
    service.delete_user(session, user_id=user_id, if_match=if_match, base=_base(request),
                        actor=caller.actor, clock=clock)
    return Response(status_code=204)


# ---- Groups


@router.get("/Groups", responses=scim_responses())
def list_groups(request: Request, session: Session, caller: Reader,
                query: Listing) -> ScimResponse:
    return ScimResponse(groups.list_groups(session, query=query, base=_base(request)))


@router.post("/Groups/.search", responses=scim_responses())
def search_groups(request: Request, session: Session, caller: Reader,
                  body: ResourceBody) -> ScimResponse:
    return ScimResponse(groups.list_groups(session, query=_search(body), base=_base(request)))


@router.post("/Groups", status_code=201, responses=scim_responses(409))
def create_group(request: Request, session: Session, caller: Writer, clock: ClockDep,
                 body: ResourceBody) -> ScimResponse:
    group = groups.create_group(session, body=body, base=_base(request), actor=caller.actor,
                                clock=clock)
    return _answer(group, 201, location=True)


@router.get("/Groups/{group_id}", responses=scim_responses(304, 404))
def get_group(request: Request, session: Session, caller: Reader, group_id: str,
              query: Listing, if_none_match: IfNoneMatch = None) -> Response:
    return _read(groups.get_group(session, group_id=group_id, base=_base(request)), query,
                 if_none_match, schemas.GROUP_KIND)


@router.put("/Groups/{group_id}", responses=scim_responses(404, 409, 412))
def replace_group(request: Request, session: Session, caller: Writer, clock: ClockDep,
                  group_id: str, body: ResourceBody, if_match: IfMatch = None) -> ScimResponse:
    return _answer(groups.replace_group(session, group_id=group_id, body=body,
                                        if_match=if_match, base=_base(request),
                                        actor=caller.actor, clock=clock))


@router.patch("/Groups/{group_id}", responses=scim_responses(404, 409, 412))
def patch_group(request: Request, session: Session, caller: Writer, clock: ClockDep,
                group_id: str, body: ResourceBody, if_match: IfMatch = None) -> ScimResponse:
    return _answer(groups.patch_group(session, group_id=group_id, body=body, if_match=if_match,
                                      base=_base(request), actor=caller.actor, clock=clock))


@router.delete("/Groups/{group_id}", status_code=204, responses=scim_responses(404, 412))
def delete_group(request: Request, session: Session, caller: Writer, clock: ClockDep,
                 group_id: str, if_match: IfMatch = None) -> Response:
    groups.delete_group(session, group_id=group_id, if_match=if_match, base=_base(request),
                        actor=caller.actor, clock=clock)
    return Response(status_code=204)
