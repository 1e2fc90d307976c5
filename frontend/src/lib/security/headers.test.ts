import { describe, expect, it } from "vitest";

import { STATIC_SECURITY_HEADERS, buildCsp, makeNonce } from "./headers";

function directives(csp: string): Record<string, string[]> {
  return Object.fromEntries(csp.split("; ").map((d) => [d.split(" ")[0]!, d.split(" ").slice(1)]));
}

describe("CSP", () => {
  const nonce = makeNonce();
  const csp = directives(buildCsp({ nonce, imageOrigin: "https://pages.s3.eu-west-1.amazonaws.com" }));

  it("allows scripts only by nonce, never eval or inline in production", () => {
    expect(csp["script-src"]).toEqual(["'self'", `'nonce-${nonce}'`, "'strict-dynamic'"]);
    expect(csp["script-src"]).not.toContain("'unsafe-eval'");
    expect(csp["script-src"]).not.toContain("'unsafe-inline'");
  });

  it("takes images from itself and the pages bucket only", () => {
    expect(csp["img-src"]).toEqual(["'self'", "data:", "blob:", "https://pages.s3.eu-west-1.amazonaws.com"]);
    expect(Object.values(csp).flat().some((v) => v.includes("*"))).toBe(false);
  });

  it("forbids framing, plugins and base/form hijacking; the browser talks to its own origin only", () => {
    expect(csp["frame-ancestors"]).toEqual(["'none'"]);
    expect(csp["object-src"]).toEqual(["'none'"]);
    expect(csp["base-uri"]).toEqual(["'none'"]);
    expect(csp["form-action"]).toEqual(["'self'"]);
    expect(csp["connect-src"]).toEqual(["'self'"]);
  });

  it("adds eval only for next dev, and refuses a weak nonce", () => {
    expect(buildCsp({ nonce, imageOrigin: "http://127.0.0.1:1", dev: true })).toContain("'unsafe-eval'");
    expect(() => buildCsp({ nonce: "short", imageOrigin: "http://x" })).toThrow(/nonce/);
    expect(makeNonce()).not.toBe(makeNonce());
  });
});

describe("static headers", () => {
  it("deny framing and sniffing, and set referrer and permissions policies", () => {
    const headers = Object.fromEntries(STATIC_SECURITY_HEADERS.map((h) => [h.key, h.value]));
    expect(headers["X-Frame-Options"]).toBe("DENY");
    expect(headers["X-Content-Type-Options"]).toBe("nosniff");
    expect(headers["Referrer-Policy"]).toBe("strict-origin-when-cross-origin");
    expect(headers["Permissions-Policy"]).toContain("camera=()");
  });
});
