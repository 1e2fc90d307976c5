import type { ErrorEvent } from "@sentry/nextjs";
import { describe, expect, it } from "vitest";

import { SENTRY_BASE_OPTIONS, scrubEvent } from "./scrub";

describe("Sentry scrubbing", () => {
  it("drops the user's IP, email and name, cookies, headers, bodies and query strings", () => {
    const event = scrubEvent({
      type: undefined,
      user: { id: "u1", ip_address: "203.0.113.9", email: "a@example.com", username: "alice" },
      request: {
        url: "https://app.example/search?q=my+medical+record",
        cookies: { "next-auth.session-token": "abc" },
        headers: { authorization: "Bearer x", cookie: "a=b" },
        data: { message: "private" },
        query_string: "q=my+medical+record",
      },
      breadcrumbs: [{ data: { url: "/api/proxy/search?q=secret", from: "/search?q=a", to: "/search?q=b" } }],
    } as ErrorEvent);
    expect(event.user).toEqual({ id: "u1" });
    expect(event.request).toEqual({ url: "https://app.example/search" });
    expect(event.breadcrumbs![0]!.data).toEqual({ url: "/api/proxy/search", from: "/search", to: "/search" });
    expect(JSON.stringify(event)).not.toMatch(/203\.0\.113|example\.com"|alice|Bearer|secret|medical/);
  });

  it("is what the SDK is configured with, with default PII off", () => {
    expect(SENTRY_BASE_OPTIONS.beforeSend).toBe(scrubEvent);
    expect(SENTRY_BASE_OPTIONS.sendDefaultPii).toBe(false);
  });
});
