/** Same-origin proxy to the API: the browser sends its session cookie here, the server adds the bearer token. */
import { NextResponse, type NextRequest } from "next/server";

import { serverEnv } from "@/env";
import { downstreamResponseHeaders, isAllowed, upstreamRequestHeaders, upstreamUrl } from "@/lib/api/proxy";
import { accessToken } from "@/lib/auth/token";

export const dynamic = "force-dynamic";

async function forward(request: NextRequest, context: { params: Promise<{ path: string[] }> }): Promise<Response> {
  const path = (await context.params).path.join("/");
  if (!isAllowed(request.method, path)) {
    return NextResponse.json({ detail: "not found" }, { status: 404 });
  }
  const token = await accessToken();
  if (!token) return NextResponse.json({ detail: "not signed in" }, { status: 401 });
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const upstream = await fetch(upstreamUrl(serverEnv().API_URL, path, request.nextUrl.search), {
    method: request.method,
    headers: upstreamRequestHeaders(request.headers, token),
    // Streams uploads through instead of buffering them (the API enforces the size limits).
    body: hasBody ? request.body : undefined,
    ...(hasBody ? { duplex: "half" } : {}),
    cache: "no-store",
    redirect: "manual",
    signal: request.signal,
  } as RequestInit);
  // The body is passed on as a stream: SSE progress events arrive as the API sends them.
  return new Response(upstream.body, { status: upstream.status, headers: downstreamResponseHeaders(upstream.headers) });
}

export { forward as GET, forward as POST, forward as DELETE };
