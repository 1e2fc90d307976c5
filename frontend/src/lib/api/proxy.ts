/**
 * The same-origin proxy's allow-list: which browser requests to /api/proxy/<path> are forwarded to the API (with
 * the session's access token added server-side). Anything else is refused before the API sees it, so the browser
 * can reach exactly the operations the pages use and never the admin routes.
 */

const HEX32 = "[a-f0-9]{32}";
const JOB = "[A-Za-z0-9_-]{1,64}";

export const PROXY_ROUTES: ReadonlyArray<{ method: string; pattern: RegExp }> = [
  { method: "POST", pattern: /^index$/ },
  { method: "GET", pattern: new RegExp(`^jobs/${JOB}$`) },
  { method: "POST", pattern: new RegExp(`^jobs/${JOB}/cancel$`) },
  { method: "GET", pattern: new RegExp(`^progress/stream/${JOB}$`) },
  { method: "GET", pattern: /^search$/ },
  { method: "POST", pattern: /^chat$/ },
  { method: "GET", pattern: new RegExp(`^documents/${HEX32}$`) },
  { method: "DELETE", pattern: new RegExp(`^documents/${HEX32}$`) },
  { method: "GET", pattern: new RegExp(`^documents/${HEX32}/export$`) },
];

export function isAllowed(method: string, path: string): boolean {
  return PROXY_ROUTES.some((route) => route.method === method && route.pattern.test(path));
}

/** Request headers passed on to the API; cookies (the session) and the browser's own auth never are. */
const FORWARDED_REQUEST_HEADERS = ["content-type", "content-length", "accept", "last-event-id"];
/** Response headers passed back; the API's own security headers are replaced by ours. */
const FORWARDED_RESPONSE_HEADERS = ["content-type", "cache-control", "retry-after", "x-request-id"];

export function upstreamRequestHeaders(incoming: Headers, accessToken: string): Headers {
  const out = new Headers();
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = incoming.get(name);
    if (value !== null) out.set(name, value);
  }
  out.set("authorization", `Bearer ${accessToken}`);
  return out;
}

export function downstreamResponseHeaders(upstream: Headers): Headers {
  const out = new Headers();
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.get(name);
    if (value !== null) out.set(name, value);
  }
  if (!out.has("cache-control")) out.set("cache-control", "no-store");
  return out;
}

/** The upstream URL for an allowed path, keeping only the query string (never a different host). */
export function upstreamUrl(apiUrl: string, path: string, search: string): string {
  const base = new URL(apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`);
  const target = new URL(path, base);
  if (target.origin !== base.origin) throw new Error("proxy path escaped the API origin");
  target.search = search;
  return target.toString();
}
