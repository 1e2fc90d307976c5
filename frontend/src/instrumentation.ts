/** Server start: the run-time environment is validated here (a bad variable stops the server, naming it), then
 * Sentry is initialised for the server when SENTRY_DSN (or SENTRY_DSN_FILE) is set. */
import * as Sentry from "@sentry/nextjs";

export async function register(): Promise<void> {
  // Only the Node.js server: nothing here runs on the edge runtime (the middleware runs on Node.js too).
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { serverEnv } = await import("@/env");
  const { SENTRY_BASE_OPTIONS } = await import("@/lib/sentry/scrub");
  const env = serverEnv();
  if (env.SENTRY_DSN) {
    Sentry.init({ dsn: env.SENTRY_DSN, environment: env.SENTRY_ENVIRONMENT, ...SENTRY_BASE_OPTIONS });
  }
}

export const onRequestError = Sentry.captureRequestError;
