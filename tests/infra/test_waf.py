"""WAF and the upload routes: the largest upload the API accepts passes every edge layer on both paths, and one
byte more is refused by the API with 413 (a cross-layer contract: infra/waf.py, infra/cdn_waf.py, infra/edge.py,
infra/cdn.py, app/api/uploads.py, app/api/settings.py, the frontend's proxy route).

Two paths reach the API's POST /index: the API host directly (ALB -> regional web ACL), and the browser through the
apex (CloudFront -> its CLOUDFRONT-scope web ACL -> ALB -> regional web ACL -> the frontend's same-origin proxy at
POST /api/proxy/index, which streams the body on). AWS's Common rule set blocks every body over 8 KB
(SizeRestrictions_BODY); both ACLs only count that rule and block its label again unless a count rule labelled the
request as an upload route (exact Host, method, path). The rules are evaluated here as WAF evaluates them (priority
order, count rules add their labels, labels visible to later rules), over the recorded web ACLs of every stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.api.middleware import RequestContextMiddleware
from app.api.settings import Settings
from app.api.uploads import UploadRejected, UploadSession
from infra.waf import (
    ALB_BODY_INSPECTION_LIMIT_BYTES,
    CLOUDFRONT_DEFAULT_BODY_INSPECTION_LIMIT_BYTES,
    COMMON_RULE_SET,
    LARGE_BODY_RULE,
    PROXY_UPLOAD_PATH,
    SIZE_RESTRICTIONS_BODY_BYTES,
    UPLOAD_EXEMPT_RULES,
    UPLOAD_METHOD,
    UPLOAD_PATH,
    UPLOAD_ROUTE_RULE,
    UploadRoute,
    upload_exemption,
)
from stacks.engine.offline import Record
from tests.infra.platform_graph import STACKS

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "src"


@dataclass(frozen=True)
class Request:
    host: str
    method: str
    path: str
    body_bytes: int


def _transform(value: str, transformations: list[dict[str, Any]]) -> str:
    for t in sorted(transformations, key=lambda t: t["priority"]):
        assert t["type"] in ("NONE", "LOWERCASE"), f"transformation the contract does not model: {t}"
        value = value.lower() if t["type"] == "LOWERCASE" else value
    return value


def _field(request: Request, field: dict[str, Any]) -> str:
    if "method" in field:
        return request.method
    if "uriPath" in field:
        return request.path
    if field.get("singleHeader", {}).get("name") == "host":
        return request.host
    raise AssertionError(f"unexpected field {field}")


def _label_matches(key: str, labels: set[str]) -> bool:
    # WAF: a LABEL key is the label's name, optionally with any number of its leading namespaces.
    return any(label == key or label.endswith(f":{key}") for label in labels)


def _matches(statement: dict[str, Any], request: Request, labels: set[str]) -> bool:
    if "andStatement" in statement:
        return all(_matches(s, request, labels) for s in statement["andStatement"]["statements"])
    if "orStatement" in statement:
        return any(_matches(s, request, labels) for s in statement["orStatement"]["statements"])
    if "notStatement" in statement:
        return not _matches(statement["notStatement"]["statement"], request, labels)
    if "labelMatchStatement" in statement:
        assert statement["labelMatchStatement"]["scope"] == "LABEL"
        return _label_matches(statement["labelMatchStatement"]["key"], labels)
    if "byteMatchStatement" in statement:
        match = statement["byteMatchStatement"]
        assert match["positionalConstraint"] == "EXACTLY"
        return _transform(_field(request, match["fieldToMatch"]), match["textTransformations"]) == match["searchString"]
    if "rateBasedStatement" in statement:
        return False  # one request never trips the per-IP rate
    raise AssertionError(f"statement the contract does not model: {sorted(statement)}")


def blocked_by(acl: dict[str, Any], request: Request) -> str | None:
    """The rule that blocks `request`, or None. Managed groups: only SizeRestrictions_BODY is modelled."""
    labels: set[str] = set()
    namespace = f"awswaf:111122223333:webacl:{acl['name']}:"  # what WAF prepends to a rule's own labels
    for rule in sorted(acl["rules"], key=lambda r: r["priority"]):
        group = rule["statement"].get("managedRuleGroupStatement")
        if group is not None:
            if group["name"] != COMMON_RULE_SET or request.body_bytes <= SIZE_RESTRICTIONS_BODY_BYTES:
                continue
            overrides = {o["name"]: o["actionToUse"] for o in group.get("ruleActionOverrides") or []}
            labels.add(UPLOAD_EXEMPT_RULES["SizeRestrictions_BODY"])
            if "count" not in overrides.get("SizeRestrictions_BODY", {}):
                return f"{COMMON_RULE_SET}/SizeRestrictions_BODY"
            continue
        if not _matches(rule["statement"], request, labels):
            continue
        action = rule.get("action") or {}
        if "block" in action:
            return str(rule["name"])
        assert "count" in action, f"{rule['name']}: action the contract does not model: {action}"
        labels.update(namespace + label["name"] for label in rule.get("ruleLabels") or [])
    return None


def largest_accepted_upload(settings: Settings) -> int:
    """The API's cap on a POST /index body (what UploadSession refuses with 413 beyond)."""
    session = UploadSession(
        max_file_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files, max_pages=settings.max_pdf_pages
    )
    return session.max_total_bytes


def _pod_settings(record: Record) -> Settings:
    """The upload limits the api pods run with: their env where infra sets them, else the app's defaults."""
    env: dict[str, str] = {}
    for deployment in record.of_type("kubernetes:apps/v1:Deployment"):
        for container in deployment.inputs["spec"]["template"]["spec"]["containers"]:
            for var in container.get("env") or []:
                if var.get("name") in ("MAX_UPLOAD_MB", "MAX_UPLOAD_FILES") and "value" in var:
                    env[var["name"].lower()] = var["value"]
    limits: dict[str, Any] = {k: int(v) for k, v in env.items()}
    return Settings.model_construct(**limits)


def _acl(record: Record) -> dict[str, Any]:
    """The ALB's regional web ACL (it sees both hosts)."""
    return record.one(WEB_ACL, "edge-waf-acl").inputs


def _cdn_acl(record: Record) -> dict[str, Any]:
    """CloudFront's web ACL (it sees the apex only)."""
    (acl,) = [a for a in record.of_type(WEB_ACL) if a.inputs["scope"] == "CLOUDFRONT"]
    return acl.inputs


def hosts(record: Record) -> tuple[str, str]:
    """(apex, API host) of a stack."""
    edge = record.config.edge
    return edge.domain, f"{edge.api_subdomain}.{edge.domain}"


def layers(record: Record, request: Request) -> list[dict[str, Any]]:
    """The web ACLs a request to `request.host` passes, in order: the apex CloudFront's then the ALB's."""
    apex, _ = hosts(record)
    return [_cdn_acl(record), _acl(record)] if request.host == apex else [_acl(record)]


def blocked_on_the_way(record: Record, request: Request) -> str | None:
    for acl in layers(record, request):
        if (rule := blocked_by(acl, request)) is not None:
            return f"{acl['scope']}:{rule}"
    return None


def upload_requests(record: Record, body_bytes: int) -> list[Request]:
    """The largest upload on both paths: the browser via the apex's proxy, a client via the API host."""
    apex, api = hosts(record)
    return [
        Request(apex, UPLOAD_METHOD, PROXY_UPLOAD_PATH, body_bytes),
        Request(api, UPLOAD_METHOD, UPLOAD_PATH, body_bytes),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_the_largest_accepted_upload_passes_every_edge_layer_on_both_paths(
    records: dict[str, Record], stack: str
) -> None:
    record = records[stack]
    largest = largest_accepted_upload(_pod_settings(record))
    assert largest > 100 * SIZE_RESTRICTIONS_BODY_BYTES  # a real limit, far above the 8 KB the WAF would allow
    for request in upload_requests(record, largest):
        assert len(layers(record, request)) == (2 if request.path == PROXY_UPLOAD_PATH else 1)
        assert blocked_on_the_way(record, request) is None, request
    # ALB: no request-body limit for ip targets (only Lambda targets are capped, at 1 MB), so nothing between the
    # WAF and the pods refuses it; the listener idle timeout only limits silence, not size.
    assert {tg.inputs["targetType"] for tg in record.of_type("aws:lb/targetGroup:TargetGroup")} == {"ip"}


def _elsewhere(apex: str, api: str) -> list[Request]:
    kb9 = 9 * 1024
    return [
        Request(api, "POST", "/search", kb9),
        Request(api, "PUT", UPLOAD_PATH, kb9),
        Request(api, "POST", "/index/", kb9),
        Request(api, "POST", "/Index", kb9),
        Request(api, "POST", "/chat", 64 * 1024),
        Request(api, UPLOAD_METHOD, PROXY_UPLOAD_PATH, kb9),  # the proxy route is the apex's, not the API's
        Request(apex, UPLOAD_METHOD, UPLOAD_PATH, kb9),  # the API's route is the API host's, not the apex's
        Request(apex, "POST", "/api/proxy/chat", kb9),
        Request(apex, "PUT", PROXY_UPLOAD_PATH, kb9),
        Request(apex, "POST", PROXY_UPLOAD_PATH + "/", kb9),
        Request(apex, "POST", "/api/proxy/index/../chat", kb9),
        Request(f"evil.{apex}", UPLOAD_METHOD, PROXY_UPLOAD_PATH, kb9),
        Request("alb-123.eu-west-1.elb.amazonaws.com", UPLOAD_METHOD, UPLOAD_PATH, kb9),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_large_bodies_stay_blocked_everywhere_else(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    for request in _elsewhere(*hosts(record)):
        # Every web ACL the request meets blocks it (the ALB's sees the apex too: CloudFront is not the only way
        # a request with the apex's Host can reach the ALB's WAF).
        for acl in [_cdn_acl(record), _acl(record)]:
            assert blocked_by(acl, request) == LARGE_BODY_RULE, (acl["scope"], request)
            assert blocked_by(acl, Request(request.host, request.method, request.path, 8 * 1024)) is None


@pytest.mark.parametrize("stack", STACKS)
def test_each_web_acl_exempts_only_the_routes_of_the_hosts_it_serves(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    apex, api = hosts(record)
    big = 1 << 20
    cdn, alb = _cdn_acl(record), _acl(record)
    # CloudFront serves the apex only: the API host's route is not exempt there.
    assert blocked_by(cdn, Request(api, UPLOAD_METHOD, UPLOAD_PATH, big)) == LARGE_BODY_RULE
    assert blocked_by(cdn, Request(apex, UPLOAD_METHOD, PROXY_UPLOAD_PATH, big)) is None
    assert blocked_by(alb, Request(api, UPLOAD_METHOD, UPLOAD_PATH, big)) is None
    assert blocked_by(alb, Request(apex, UPLOAD_METHOD, PROXY_UPLOAD_PATH, big)) is None
    # Host names are case-insensitive (the rule lower-cases the header); paths and methods are not.
    assert blocked_by(alb, Request(api.upper(), UPLOAD_METHOD, UPLOAD_PATH, big)) is None


def test_the_frontend_uploads_to_the_proxy_route_the_waf_exempts() -> None:
    # PROXY_UPLOAD_PATH is what the browser really posts to: the catch-all proxy route under /api/proxy, its
    # allow-list entry for POST index, and the upload form's request.
    assert PROXY_UPLOAD_PATH == "/api/proxy/index"
    assert (FRONTEND / "app" / "api" / "proxy" / "[...path]" / "route.ts").is_file()
    allow_list = (FRONTEND / "lib" / "api" / "proxy.ts").read_text()
    assert f'{{ method: "{UPLOAD_METHOD}", pattern: /^{UPLOAD_PATH.lstrip("/")}$/ }}' in allow_list
    form = (FRONTEND / "app" / "upload" / "UploadForm.tsx").read_text()
    assert f'fetch("{PROXY_UPLOAD_PATH}", {{ method: "{UPLOAD_METHOD}"' in form


@pytest.mark.parametrize("which", ["REGIONAL", "CLOUDFRONT"])
def test_without_the_override_every_upload_is_blocked(records: dict[str, Record], which: str) -> None:
    # The defect this guards: the managed group as AWS ships it blocks any body over 8 KB, uploads included (the
    # CloudFront ACL shipped that way and blocked every upload from the browser).
    record = records["prod"]
    acl = _acl(record) if which == "REGIONAL" else _cdn_acl(record)
    stock = {
        **acl,
        "rules": [
            {
                **r,
                "statement": {
                    "managedRuleGroupStatement": {
                        **r["statement"]["managedRuleGroupStatement"],
                        "ruleActionOverrides": None,
                    }
                },
            }
            if "managedRuleGroupStatement" in r["statement"]
            else r
            for r in acl["rules"]
        ],
    }
    for request in upload_requests(record, 9 * 1024):
        assert blocked_by(stock, request) == f"{COMMON_RULE_SET}/SizeRestrictions_BODY"


@pytest.mark.parametrize("which", ["REGIONAL", "CLOUDFRONT"])
def test_the_override_and_the_label_rules_are_ordered_as_waf_needs(records: dict[str, Record], which: str) -> None:
    record = records["prod"]
    acl = _acl(record) if which == "REGIONAL" else _cdn_acl(record)
    rules = sorted(acl["rules"], key=lambda r: r["priority"])
    assert len({r["priority"] for r in rules}) == len(rules)
    names = [r["name"] for r in rules]
    crs, mark, block = names.index(COMMON_RULE_SET), names.index(UPLOAD_ROUTE_RULE), names.index(LARGE_BODY_RULE)
    # A label is only visible to rules evaluated after the rule (group) that adds it.
    assert crs < block and mark < block
    assert "count" in rules[mark]["action"] and "block" in rules[block]["action"]
    overrides = rules[crs]["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
    assert overrides == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]
    # WAF behind an ALB never sees more than 8 KB of a body, behind CloudFront 16 KB unless association_config
    # raises it (billed): either is enough for "more than 8 KB?"; size above that is the API's to enforce.
    assert ALB_BODY_INSPECTION_LIMIT_BYTES == SIZE_RESTRICTIONS_BODY_BYTES == 8192
    assert CLOUDFRONT_DEFAULT_BODY_INSPECTION_LIMIT_BYTES > SIZE_RESTRICTIONS_BODY_BYTES
    assert not acl.get("associationConfig")  # the default inspection limit, no extra charge


def _depth(statement: dict[str, Any]) -> int:
    for logical in ("andStatement", "orStatement"):
        if logical in statement:
            return 1 + max(_depth(s) for s in statement[logical]["statements"])
    if "notStatement" in statement:
        return 1 + _depth(statement["notStatement"]["statement"])
    return 1


@pytest.mark.parametrize("which", ["REGIONAL", "CLOUDFRONT"])
def test_rule_statements_nest_no_deeper_than_waf_allows(records: dict[str, Record], which: str) -> None:
    record = records["prod"]
    acl = _acl(record) if which == "REGIONAL" else _cdn_acl(record)
    for rule in acl["rules"]:
        assert _depth(rule["statement"]) <= 3, rule["name"]  # the provider's (and WAF's) nesting limit


def test_an_exemption_without_routes_is_refused() -> None:
    with pytest.raises(ValueError, match="upload_routes"):
        upload_exemption([], priority=1)
    one = upload_exemption([UploadRoute(host="a.example.com", method="POST", path="/index")], priority=1)
    assert [r.name for r in one.rules] == [UPLOAD_ROUTE_RULE, LARGE_BODY_RULE]


async def _stream(total: int, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """A well-formed multipart body of `total` bytes: one (ignored) form field whose value fills it."""
    head = b'--abc\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
    yield head
    sent = len(head)
    while sent < total:
        n = min(chunk, total - sent)
        sent += n
        yield b"x" * n


def test_the_api_refuses_one_byte_more_with_413() -> None:
    settings = Settings.model_construct()  # the app's defaults (= what infra/workloads/uploads.py sets on the pods)
    largest = largest_accepted_upload(settings)
    assert largest == settings.max_upload_mb * 1024 * 1024 * settings.max_upload_files + 64 * 1024
    session = UploadSession(
        max_file_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files, max_pages=settings.max_pdf_pages
    )
    content_type = "multipart/form-data; boundary=abc"
    # Exactly the cap passes the header check; one byte more is refused before a byte is read.
    assert session.check_headers(content_type, str(largest)) == b"abc"
    with pytest.raises(UploadRejected) as declared:
        session.check_headers(content_type, str(largest + 1))
    assert declared.value.status_code == 413
    # A body that does not declare its length is cut off as soon as it passes the cap (streamed, chunked).
    with pytest.raises(UploadRejected) as streamed:
        asyncio.run(_receive(session, largest + 1))
    assert streamed.value.status_code == 413 and "exceeds" in streamed.value.detail
    # The generic request-body cap of the middleware does not apply to the upload route (it has its own).
    assert UPLOAD_PATH in RequestContextMiddleware(app=None, max_body_bytes=1).unbounded_paths  # type: ignore[arg-type]


async def _receive(session: UploadSession, total: int) -> None:
    async with session:
        await session.receive(b"abc", _stream(total))
