/**
 * The security headers of every response. Static ones are set by `headers()` in next.config.ts; the CSP needs a
 * fresh nonce per request (Next puts it on its own inline scripts), so src/middleware.ts sets it from buildCsp().
 * HSTS is set at the edge (CloudFront's response-headers policy), where TLS terminates.
 */

export const STATIC_SECURITY_HEADERS: ReadonlyArray<{ key: string; value: string }> = [
  { key: "X-Frame-Options", value: "DENY" },
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
  {
    key: "Permissions-Policy",
    value: "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
  },
  { key: "Cross-Origin-Opener-Policy", value: "same-origin" },
];

export interface CspOptions {
  nonce: string;
  /** The pages bucket's origin: the only remote host images may come from. */
  imageOrigin: string;
  /** `next dev` evaluates code with eval() for fast refresh; never set in production. */
  dev?: boolean;
}

export function buildCsp({ nonce, imageOrigin, dev = false }: CspOptions): string {
  if (!/^[A-Za-z0-9+/=_-]{16,}$/.test(nonce)) throw new Error("CSP nonce must be at least 16 base64 characters");
  const image = new URL(imageOrigin).origin;
  const directives: Record<string, string[]> = {
    "default-src": ["'self'"],
    "script-src": ["'self'", `'nonce-${nonce}'`, "'strict-dynamic'", ...(dev ? ["'unsafe-eval'"] : [])],
    // React and Next set style attributes at run time; no script can come in through a style.
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:", image],
    "font-src": ["'self'"],
    // The browser only ever calls this origin: the API is reached through the server-side proxy.
    "connect-src": ["'self'", ...(dev ? ["ws:"] : [])],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
  };
  return Object.entries(directives)
    .map(([name, values]) => `${name} ${values.join(" ")}`)
    .join("; ");
}

export function makeNonce(): string {
  const bytes = new Uint8Array(18);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}
