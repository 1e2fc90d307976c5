/** The Sentry browser SDK: on only when NEXT_PUBLIC_SENTRY_DSN was set at build time; events are scrubbed. */
import * as Sentry from "@sentry/nextjs";

import { SENTRY_BASE_OPTIONS } from "@/lib/sentry/scrub";

const dsn = process.env.NEXT_PUBLIC_SENTRY_DSN;
if (dsn) {
  // The environment is a run-time value (the image is promoted unchanged): the root layout renders it.
  const environment = document.querySelector('meta[name="sentry-environment"]')?.getAttribute("content") ?? undefined;
  Sentry.init({ dsn, environment, ...SENTRY_BASE_OPTIONS });
}

export const onRouterTransitionStart = Sentry.captureRouterTransitionStart;
