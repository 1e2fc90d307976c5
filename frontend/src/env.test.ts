import { describe, expect, it } from "vitest";

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { EnvError, parsePublicEnv, parseServerEnv, resolveFileVariables } from "./env";

const GOOD = {
  API_URL: "http://visionrag-api.visionrag.svc:8000",
  AUTH_ISSUER: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123",
  AUTH_CLIENT_ID: "abc",
  AUTH_CLIENT_SECRET: "shh",
  NEXTAUTH_URL: "https://visionrag.example.com",
  NEXTAUTH_SECRET: "x".repeat(32),
  PAGES_IMAGE_ORIGIN: "https://visionrag-pages.s3.eu-west-1.amazonaws.com",
};

describe("server environment", () => {
  it("accepts a complete environment and fills the defaults", () => {
    const env = parseServerEnv(GOOD);
    expect(env.AUTH_PROVIDER_ID).toBe("cognito");
    expect(env.AUTH_SCOPE).toBe("openid email profile");
    expect(env.SENTRY_ENVIRONMENT).toBe("production");
  });

  it.each([
    ["API_URL", undefined],
    ["AUTH_ISSUER", "not a url"],
    ["AUTH_CLIENT_SECRET", ""],
    ["NEXTAUTH_SECRET", "short"],
    ["PAGES_IMAGE_ORIGIN", "https://bucket.example.com/with/path"],
    ["PAGES_IMAGE_ORIGIN", "ftp://bucket.example.com"],
    ["AUTH_PROVIDER_ID", "Cognito!"],
    ["AUTH_SCOPE", "email profile"],
  ])("names %s when it is %j", (name, value) => {
    const source = { ...GOOD, [name]: value };
    expect(() => parseServerEnv(source)).toThrow(EnvError);
    expect(() => parseServerEnv(source)).toThrow(new RegExp(`^invalid server environment: .*${name}:`));
  });

  it("lists every bad variable at once", () => {
    const error = (() => {
      try {
        parseServerEnv({ ...GOOD, API_URL: undefined, NEXTAUTH_URL: "nope" });
      } catch (exc) {
        return String(exc);
      }
    })();
    expect(error).toContain("API_URL");
    expect(error).toContain("NEXTAUTH_URL");
  });
});

describe("public environment", () => {
  it("treats an empty DSN as unset and rejects a malformed one by name", () => {
    expect(parsePublicEnv({ NEXT_PUBLIC_SENTRY_DSN: "" }).NEXT_PUBLIC_SENTRY_DSN).toBeUndefined();
    expect(parsePublicEnv({ NEXT_PUBLIC_SENTRY_DSN: "https://k@o1.ingest.sentry.io/1" }).NEXT_PUBLIC_SENTRY_DSN).toMatch(
      /^https:/,
    );
    expect(() => parsePublicEnv({ NEXT_PUBLIC_SENTRY_DSN: "dsn" })).toThrow(/NEXT_PUBLIC_SENTRY_DSN/);
  });

  it("never reads server-only variables", () => {
    // Only NEXT_PUBLIC_* are looked at: a server secret in the environment cannot end up in the public object.
    const env = parsePublicEnv({ ...GOOD, NEXT_PUBLIC_SENTRY_DSN: undefined } as Record<string, string | undefined>);
    expect(Object.keys(env).filter((key) => !key.startsWith("NEXT_PUBLIC_"))).toEqual([]);
    expect(JSON.stringify(env)).not.toContain("shh");
  });
});

describe("secrets from files (NAME_FILE)", () => {
  const dir = mkdtempSync(join(tmpdir(), "env-test-"));
  const secretFile = join(dir, "nextauth_secret");
  writeFileSync(secretFile, `${"s".repeat(48)}\n`);
  const withoutSecrets: Record<string, string | undefined> = { ...GOOD, NEXTAUTH_SECRET: undefined, AUTH_CLIENT_SECRET: undefined };

  it("reads the file, dropping the trailing newline", () => {
    const clientFile = join(dir, "client_secret");
    writeFileSync(clientFile, "client-secret");
    const env = parseServerEnv({ ...withoutSecrets, NEXTAUTH_SECRET_FILE: secretFile, AUTH_CLIENT_SECRET_FILE: clientFile });
    expect(env.NEXTAUTH_SECRET).toBe("s".repeat(48));
    expect(env.AUTH_CLIENT_SECRET).toBe("client-secret");
  });

  it("names the variable when the file is missing or doubles a value", () => {
    expect(() => parseServerEnv({ ...GOOD, AUTH_CLIENT_SECRET: undefined, AUTH_CLIENT_SECRET_FILE: join(dir, "nope") })).toThrow(
      /AUTH_CLIENT_SECRET_FILE: cannot read .*ENOENT/,
    );
    expect(() => resolveFileVariables({ NEXTAUTH_SECRET: "x".repeat(32), NEXTAUTH_SECRET_FILE: secretFile })).toThrow(
      /NEXTAUTH_SECRET_FILE: set NEXTAUTH_SECRET or NEXTAUTH_SECRET_FILE, not both/,
    );
  });

  it("still validates what the file holds", () => {
    const short = join(dir, "short");
    writeFileSync(short, "short\n");
    expect(() => parseServerEnv({ ...withoutSecrets, AUTH_CLIENT_SECRET: "c", NEXTAUTH_SECRET_FILE: short })).toThrow(/NEXTAUTH_SECRET:/);
  });
});
