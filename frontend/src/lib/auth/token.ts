/** The signed-in user's API access token, for server code only (route handlers, server components). */
import { cookies } from "next/headers";
import { getToken } from "next-auth/jwt";

import { serverEnv } from "@/env";

import { nowSeconds, type AppJWT } from "./refresh";

/**
 * Decodes the session cookie. A token past its expiry yields null (the caller answers 401 and the page sends the
 * user to sign in): refreshing happens in the jwt callback, which the browser's session polling triggers well
 * before expiry (SessionProvider refetchInterval in src/app/providers.tsx).
 */
export async function accessToken(): Promise<string | null> {
  const token = await sessionToken();
  if (!token?.accessToken || token.error) return null;
  // Seconds left are not worth a call that the API would refuse halfway.
  if (token.expiresAt !== undefined && nowSeconds() >= token.expiresAt - 5) return null;
  return token.accessToken;
}

/**
 * The session cookie, decoded without running the jwt callback. Server components must not run it (through
 * getServerSession): a refresh there could not be written back to the cookie, and an IdP that rotates refresh
 * tokens would then have revoked the one the cookie still holds.
 */
export async function sessionToken(): Promise<AppJWT | null> {
  const jar = await cookies();
  return (await getToken({
    // Only the cookie jar: a bearer header must not stand in for the session cookie.
    req: { cookies: jar, headers: {} } as never,
    secret: serverEnv().NEXTAUTH_SECRET,
    secureCookie: serverEnv().NEXTAUTH_URL.startsWith("https://"),
  })) as AppJWT | null;
}

/** The signed-in user's display name for the page header, or null. */
export async function currentUserName(): Promise<string | null> {
  const token = await sessionToken();
  if (!token || token.error) return null;
  return token.name ?? token.email ?? token.sub ?? null;
}
