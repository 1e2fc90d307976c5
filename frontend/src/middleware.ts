/**
 * Every page request: a fresh CSP nonce, and the sign-in gate. An anonymous visitor is redirected to /signin (pages)
 * or answered 401 (API routes); the session cookie is checked with next-auth's getToken.
 */
import { NextResponse, type NextRequest } from "next/server";
import { getToken } from "next-auth/jwt";

import { serverEnv } from "@/env";
import { buildCsp, makeNonce } from "@/lib/security/headers";

const PUBLIC_PATHS = [/^\/signin$/, /^\/api\/auth\//, /^\/api\/health$/];

export function isPublic(pathname: string): boolean {
  return PUBLIC_PATHS.some((pattern) => pattern.test(pathname));
}

export async function middleware(request: NextRequest): Promise<NextResponse> {
  const env = serverEnv();
  const nonce = makeNonce();
  const csp = buildCsp({ nonce, imageOrigin: env.PAGES_IMAGE_ORIGIN, dev: process.env.NODE_ENV === "development" });
  const { pathname, search } = request.nextUrl;

  let response: NextResponse;
  const token = isPublic(pathname)
    ? null
    : await getToken({ req: request, secret: env.NEXTAUTH_SECRET, secureCookie: env.NEXTAUTH_URL.startsWith("https://") });
  if (!isPublic(pathname) && (!token || token.error)) {
    if (pathname.startsWith("/api/")) {
      response = NextResponse.json({ detail: "not signed in" }, { status: 401 });
    } else {
      const signIn = new URL("/signin", env.NEXTAUTH_URL);
      signIn.searchParams.set("callbackUrl", `${pathname}${search}`);
      response = NextResponse.redirect(signIn);
    }
  } else {
    // Next reads the nonce from the request's CSP header and puts it on the scripts it renders.
    const headers = new Headers(request.headers);
    headers.set("x-nonce", nonce);
    headers.set("content-security-policy", csp);
    response = NextResponse.next({ request: { headers } });
  }
  response.headers.set("content-security-policy", csp);
  return response;
}

export const config = {
  runtime: "nodejs",
  // Static build assets need no nonce and no session.
  // Not the API proxy either: Next.js buffers a request body for middleware and cuts that copy at 10 MB
  // (`middlewareClientMaxBodySize`), which would truncate every larger PDF upload. The proxy route checks the
  // session itself (401) and answers JSON, which needs no CSP nonce.
  matcher: ["/((?!_next/static|_next/image|favicon.ico|api/proxy/).*)"],
};
