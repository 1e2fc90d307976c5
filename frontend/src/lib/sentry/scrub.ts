/**
 * Sentry beforeSend: events leave without personal data. The SDK runs with sendDefaultPii off; this also drops
 * what an integration or a captured context could still add: the user's IP, email and name, cookies, request
 * headers and bodies, and query strings (search questions are the user's words).
 */
import type { ErrorEvent } from "@sentry/nextjs";

function stripQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}

export function scrubEvent<T extends ErrorEvent>(event: T): T {
  if (event.user) {
    const { id } = event.user;
    event.user = id === undefined ? {} : { id };
  }
  if (event.request) {
    delete event.request.cookies;
    delete event.request.headers;
    delete event.request.data;
    delete event.request.query_string;
    if (event.request.url) event.request.url = stripQuery(event.request.url);
  }
  for (const crumb of event.breadcrumbs ?? []) {
    if (crumb.data && typeof crumb.data.url === "string") crumb.data.url = stripQuery(crumb.data.url);
    if (crumb.data && typeof crumb.data.to === "string") crumb.data.to = stripQuery(crumb.data.to);
    if (crumb.data && typeof crumb.data.from === "string") crumb.data.from = stripQuery(crumb.data.from);
  }
  return event;
}

export const SENTRY_BASE_OPTIONS = {
  sendDefaultPii: false,
  tracesSampleRate: 0,
  beforeSend: scrubEvent,
} as const;
