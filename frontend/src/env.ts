/**
 * Environment variables, validated with zod and split by who may see them.
 *
 * - public: `NEXT_PUBLIC_*`, inlined into the browser bundle by `next build`, so validated at build time.
 * - server: read only on the server at run time (route handlers, server components, middleware), never bundled.
 *   The image is built once and promoted through the environments, so these are injected at run time and
 *   validated when the server starts (src/instrumentation.ts); `next build` validates them too unless
 *   SKIP_SERVER_ENV_VALIDATION=1 (set only in the Dockerfile's build stage).
 *
 * A bad or missing variable fails with a message that names it: `invalid environment: AUTH_ISSUER: ...`.
 */
import { readFileSync } from "node:fs";

import { z } from "zod";

const url = z.url({ protocol: /^https?$/ });
const origin = url.refine((value) => new URL(value).origin === value.replace(/\/$/, ""), {
  message: "must be an origin (scheme://host[:port]) with no path",
});

export const publicSchema = z.object({
  NEXT_PUBLIC_SENTRY_DSN: z.union([z.literal(""), url]).optional(),
});

export const serverSchema = z.object({
  API_URL: url,
  AUTH_ISSUER: url,
  AUTH_CLIENT_ID: z.string().min(1),
  AUTH_CLIENT_SECRET: z.string().min(1),
  // The provider id is the last segment of the callback URL: /api/auth/callback/<AUTH_PROVIDER_ID>.
  AUTH_PROVIDER_ID: z
    .string()
    .regex(/^[a-z0-9-]{1,32}$/, "lower-case letters, digits and -")
    .default("cognito"),
  AUTH_PROVIDER_NAME: z.string().min(1).max(64).default("single sign-on"),
  AUTH_SCOPE: z
    .string()
    .refine((s) => s.split(" ").includes("openid"), "must include openid")
    .default("openid email profile"),
  NEXTAUTH_URL: url,
  NEXTAUTH_SECRET: z.string().min(32, "at least 32 characters (openssl rand -base64 32)"),
  // Where the presigned page images live (the pages bucket's S3 endpoint): CSP img-src and next/image.
  PAGES_IMAGE_ORIGIN: origin,
  SENTRY_DSN: z.union([z.literal(""), url]).optional(),
  SENTRY_ENVIRONMENT: z.string().max(64).default("production"),
});

export type PublicEnv = z.infer<typeof publicSchema>;
export type ServerEnv = z.infer<typeof serverSchema>;

export class EnvError extends Error {}

function parse<T extends z.ZodType>(schema: T, source: Record<string, string | undefined>, kind: string): z.infer<T> {
  // An empty string is "unset": Kubernetes and shells hand those out for missing optional values.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== ""));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new EnvError(`invalid ${kind} environment: ${problems.join("; ")}`);
  }
  return result.data;
}

export function parsePublicEnv(source: Record<string, string | undefined> = process.env): PublicEnv {
  // Spelled out: Next inlines NEXT_PUBLIC_* only where they are written literally.
  return parse(publicSchema, { NEXT_PUBLIC_SENTRY_DSN: source.NEXT_PUBLIC_SENTRY_DSN }, "public");
}

/**
 * Secrets may come as files (Kubernetes mounts them; env values leak into crash dumps): NAME_FILE names the file
 * whose content (trailing newline dropped) is NAME. Setting both is refused.
 */
export const FILE_VARIABLES = ["NEXTAUTH_SECRET", "AUTH_CLIENT_SECRET", "SENTRY_DSN"] as const;

export function resolveFileVariables(
  source: Record<string, string | undefined>,
  read: (path: string) => string = (path) => readFileSync(path, "utf8"),
): Record<string, string | undefined> {
  const out = { ...source };
  const problems: string[] = [];
  for (const name of FILE_VARIABLES) {
    const path = source[`${name}_FILE`];
    if (!path) continue;
    if (source[name]) {
      problems.push(`${name}_FILE: set ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      out[name] = read(path).replace(/\r?\n$/, "");
    } catch (error) {
      problems.push(`${name}_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  if (problems.length) throw new EnvError(`invalid server environment: ${problems.join("; ")}`);
  return out;
}

export function parseServerEnv(source: Record<string, string | undefined> = process.env): ServerEnv {
  return parse(serverSchema, resolveFileVariables(source), "server");
}

let cached: ServerEnv | undefined;

/** The server's environment, parsed once. Throws EnvError naming the bad variables. */
export function serverEnv(): ServerEnv {
  if (typeof window !== "undefined") throw new EnvError("serverEnv() called in the browser");
  cached ??= parseServerEnv();
  return cached;
}
