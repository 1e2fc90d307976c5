import { describe, expect, it } from "vitest";

import { downstreamResponseHeaders, isAllowed, upstreamRequestHeaders, upstreamUrl } from "./proxy";

const DOC = "0123456789abcdef0123456789abcdef";

describe("proxy allow-list", () => {
  it.each([
    ["POST", "index"],
    ["GET", "jobs/abc_123"],
    ["GET", "progress/stream/abc"],
    ["GET", "search"],
    ["POST", "chat"],
    ["GET", `documents/${DOC}`],
    ["DELETE", `documents/${DOC}`],
    ["GET", `documents/${DOC}/export`],
  ])("forwards %s %s", (method, path) => expect(isAllowed(method, path)).toBe(true));

  it.each([
    ["GET", "admin/audit"],
    ["POST", "admin/reindex"],
    ["GET", "health/ready"],
    ["DELETE", "search"],
    ["GET", "documents/../admin/audit"],
    ["GET", `documents/${DOC}/../../admin`],
    ["GET", "jobs/a/b"],
    ["GET", "metrics"],
  ])("refuses %s %s", (method, path) => expect(isAllowed(method, path)).toBe(false));
});

describe("proxy headers and URL", () => {
  it("replaces the browser's credentials with the bearer token", () => {
    const incoming = new Headers({
      cookie: "next-auth.session-token=abc",
      authorization: "Bearer forged",
      "content-type": "multipart/form-data; boundary=x",
      "x-forwarded-for": "1.2.3.4",
    });
    const out = upstreamRequestHeaders(incoming, "real");
    expect(out.get("authorization")).toBe("Bearer real");
    expect(out.get("cookie")).toBeNull();
    expect(out.get("x-forwarded-for")).toBeNull();
    expect(out.get("content-type")).toBe("multipart/form-data; boundary=x");
  });

  it("passes back only content headers and makes responses uncacheable", () => {
    const out = downstreamResponseHeaders(new Headers({ "content-type": "text/event-stream", "set-cookie": "x=1" }));
    expect(out.get("set-cookie")).toBeNull();
    expect(out.get("cache-control")).toBe("no-store");
  });

  it("keeps the query and stays on the API origin", () => {
    expect(upstreamUrl("http://api:8000", "search", "?q=a&k=2")).toBe("http://api:8000/search?q=a&k=2");
    expect(() => upstreamUrl("http://api:8000", "//evil.example/x", "")).toThrow(/escaped/);
  });
});
