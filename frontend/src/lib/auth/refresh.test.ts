import { describe, expect, it, vi } from "vitest";

import { REFRESH_SKEW_S, jwtCallback, sessionCallback, type AppJWT } from "./refresh";

const NOW = 1_800_000_000;
const ENDPOINT = "https://issuer.example/oauth2/token";

function deps(fetchImpl: typeof fetch) {
  return {
    tokenEndpoint: async () => ENDPOINT,
    clientId: "client id",
    clientSecret: "s3cret",
    fetch: fetchImpl,
    now: () => NOW,
  };
}

function respond(status: number, body: unknown) {
  return vi.fn(async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch & {
    mock: { calls: Array<[string, RequestInit]> };
  };
}

describe("jwt callback", () => {
  it("keeps the IdP's tokens at sign-in", async () => {
    const fetchImpl = respond(500, {});
    const token = await jwtCallback(
      {
        token: { sub: "u1" },
        account: {
          provider: "cognito",
          type: "oauth",
          providerAccountId: "u1",
          access_token: "at-1",
          refresh_token: "rt-1",
          expires_at: NOW + 3600,
        },
      },
      deps(fetchImpl),
    );
    expect(token).toMatchObject({ accessToken: "at-1", refreshToken: "rt-1", expiresAt: NOW + 3600 });
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("leaves a token with time left alone", async () => {
    const fetchImpl = respond(500, {});
    const token: AppJWT = { accessToken: "at-1", refreshToken: "rt-1", expiresAt: NOW + REFRESH_SKEW_S + 1 };
    expect(await jwtCallback({ token }, deps(fetchImpl))).toBe(token);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("refreshes near expiry with client_secret_basic, keeping the refresh token the IdP did not rotate", async () => {
    const fetchImpl = respond(200, { access_token: "at-2", expires_in: 600, token_type: "Bearer" });
    const token = await jwtCallback(
      { token: { accessToken: "at-1", refreshToken: "rt-1", expiresAt: NOW + 10 } },
      deps(fetchImpl),
    );
    expect(token).toMatchObject({ accessToken: "at-2", refreshToken: "rt-1", expiresAt: NOW + 600 });
    expect(token.error).toBeUndefined();
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe(ENDPOINT);
    expect(new Headers(init.headers).get("authorization")).toBe(`Basic ${btoa("client%20id:s3cret")}`);
    const form = new URLSearchParams(String(init.body));
    expect(Object.fromEntries(form)).toEqual({ grant_type: "refresh_token", refresh_token: "rt-1" });
  });

  it("takes a rotated refresh token", async () => {
    const fetchImpl = respond(200, { access_token: "at-2", refresh_token: "rt-2", expires_in: 600 });
    const token = await jwtCallback({ token: { accessToken: "a", refreshToken: "rt-1", expiresAt: NOW } }, deps(fetchImpl));
    expect(token.refreshToken).toBe("rt-2");
  });

  it.each([
    ["the IdP refuses", respond(400, { error: "invalid_grant" })],
    ["the IdP is unreachable", vi.fn(async () => Promise.reject(new TypeError("fetch failed"))) as unknown as typeof fetch],
  ])("drops the access token and flags the session when %s", async (_why, fetchImpl) => {
    const token = await jwtCallback({ token: { accessToken: "old", refreshToken: "rt-1", expiresAt: NOW - 1 } }, deps(fetchImpl));
    expect(token.accessToken).toBeUndefined();
    expect(token.error).toBe("RefreshFailed");
  });

  it("flags a session that cannot be refreshed at all", async () => {
    const token = await jwtCallback({ token: { accessToken: "old", expiresAt: NOW - 1 } }, deps(respond(200, {})));
    expect(token).toMatchObject({ accessToken: undefined, error: "NoRefreshToken" });
  });
});

describe("session callback", () => {
  it("hands the browser the user and the error flag, never a token", () => {
    const session = sessionCallback({
      session: { user: { name: "Alice", email: "a@example.com" }, expires: "2030-01-01T00:00:00.000Z" },
      token: { accessToken: "SECRET-AT", refreshToken: "SECRET-RT", expiresAt: NOW, error: "RefreshFailed" },
    });
    expect(session).toEqual({
      user: { name: "Alice", email: "a@example.com" },
      expires: "2030-01-01T00:00:00.000Z",
      error: "RefreshFailed",
    });
    expect(JSON.stringify(session)).not.toContain("SECRET");
  });
});
