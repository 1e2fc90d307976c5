/**
 * What the session cookie (an encrypted JWT, httpOnly) holds, and how its access token is kept fresh.
 * The access token never reaches the browser's JavaScript: session() exposes only the user's name and email.
 */
import type { Account } from "next-auth";
import type { JWT } from "next-auth/jwt";

/** Refresh this long before expiry, so a token is never sent with seconds left. */
export const REFRESH_SKEW_S = 60;

export interface TokenSet {
  accessToken?: string;
  refreshToken?: string;
  /** Unix seconds. */
  expiresAt?: number;
  error?: "RefreshFailed" | "NoRefreshToken";
}

export type AppJWT = JWT & TokenSet;

export interface RefreshDeps {
  tokenEndpoint: () => Promise<string>;
  clientId: string;
  clientSecret: string;
  fetch?: typeof fetch;
  now?: () => number;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function needsRefresh(token: TokenSet, now: number): boolean {
  return token.expiresAt !== undefined && now >= token.expiresAt - REFRESH_SKEW_S;
}

/** The token endpoint's answer to a refresh_token grant, as a new token set (the old refresh token kept when the
 * IdP returns none: Cognito without refresh-token rotation). */
export async function refreshTokens(token: AppJWT, deps: RefreshDeps): Promise<AppJWT> {
  if (!token.refreshToken) return { ...token, accessToken: undefined, error: "NoRefreshToken" };
  const doFetch = deps.fetch ?? fetch;
  const now = (deps.now ?? nowSeconds)();
  try {
    const response = await doFetch(await deps.tokenEndpoint(), {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Authorization: `Basic ${btoa(`${encodeURIComponent(deps.clientId)}:${encodeURIComponent(deps.clientSecret)}`)}`,
      },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token.refreshToken }),
      cache: "no-store",
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (!response.ok || typeof body.access_token !== "string") {
      return { ...token, accessToken: undefined, error: "RefreshFailed" };
    }
    const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 3600;
    return {
      ...token,
      accessToken: body.access_token,
      refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : token.refreshToken,
      expiresAt: now + expiresIn,
      error: undefined,
    };
  } catch {
    return { ...token, accessToken: undefined, error: "RefreshFailed" };
  }
}

/** The jwt callback: keeps the IdP's tokens at sign-in, refreshes them when they are about to expire. */
export async function jwtCallback(
  { token, account }: { token: AppJWT; account?: Account | null },
  deps: RefreshDeps,
): Promise<AppJWT> {
  const now = (deps.now ?? nowSeconds)();
  if (account) {
    return {
      ...token,
      accessToken: account.access_token,
      refreshToken: account.refresh_token,
      expiresAt: account.expires_at ?? now + 3600,
      error: undefined,
    };
  }
  if (!needsRefresh(token, now)) return token;
  return refreshTokens(token, deps);
}

export interface PublicSession {
  user: { name?: string | null; email?: string | null };
  expires: string;
  error?: TokenSet["error"];
}

/** The session callback: what `/api/auth/session` returns to the browser. No token in it, ever. */
export function sessionCallback({
  session,
  token,
}: {
  session: { user?: { name?: string | null; email?: string | null }; expires: string };
  token: AppJWT;
}): PublicSession {
  return {
    user: { name: session.user?.name ?? null, email: session.user?.email ?? null },
    expires: session.expires,
    ...(token.error ? { error: token.error } : {}),
  };
}
