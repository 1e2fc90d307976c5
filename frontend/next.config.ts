import type { NextConfig } from "next";

import { parsePublicEnv, parseServerEnv } from "./src/env";
import { STATIC_SECURITY_HEADERS } from "./src/lib/security/headers";

// Fails `next build` (and `next dev`/`start`) with the names of the bad variables: see src/env.ts.
parsePublicEnv();
if (process.env.SKIP_SERVER_ENV_VALIDATION !== "1") parseServerEnv();

/**
 * next/image may only fetch from the pages bucket (no wildcard). Read at build time; an image built without
 * PAGES_IMAGE_ORIGIN allows no remote image at all. The thumbnails themselves are `unoptimized` (the browser
 * loads the short-lived presigned URL directly, restricted by the CSP's img-src at run time), so no server-side
 * fetch of user content happens and nothing is cached on the read-only root filesystem.
 */
function remotePatterns(): NonNullable<NextConfig["images"]>["remotePatterns"] {
  const raw = process.env.PAGES_IMAGE_ORIGIN;
  if (!raw) return [];
  const origin = new URL(raw);
  return [
    {
      protocol: origin.protocol.replace(":", "") as "http" | "https",
      hostname: origin.hostname,
      port: origin.port,
      pathname: "/**",
    },
  ];
}

const config: NextConfig = {
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
  images: { remotePatterns: remotePatterns() },
  async headers() {
    return [{ source: "/:path*", headers: [...STATIC_SECURITY_HEADERS] }];
  },
};

// Sentry runs from Next's own instrumentation hooks (src/instrumentation.ts, src/instrumentation-client.ts) and stays
// off without a DSN; the build wrapper (withSentryConfig) is not used: it uploads source maps, and the build has no
// network.
export default config;
