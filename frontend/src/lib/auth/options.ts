/** next-auth (v4) configuration: one generic OIDC provider (Cognito, or any IdP) from the server environment. */
import type { NextAuthOptions } from "next-auth";

import { serverEnv } from "@/env";

import { jwtCallback, sessionCallback, type AppJWT } from "./refresh";

let discovered: Promise<string> | undefined;

/** The token endpoint from the issuer's discovery document (fetched once per process). */
function tokenEndpoint(): Promise<string> {
  discovered ??= fetch(discoveryUrl(serverEnv().AUTH_ISSUER), { cache: "no-store" })
    .then((response) => response.json() as Promise<{ token_endpoint?: string }>)
    .then((document) => {
      if (!document.token_endpoint) throw new Error("issuer discovery has no token_endpoint");
      return document.token_endpoint;
    })
    .catch((error: unknown) => {
      discovered = undefined; // retry on the next refresh instead of caching the failure
      throw error;
    });
  return discovered;
}

/** `<issuer>/.well-known/openid-configuration`, whether or not the issuer ends with a slash (Cognito's does not). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
}

export function authOptions(): NextAuthOptions {
  const env = serverEnv();
  const refreshDeps = {
    tokenEndpoint,
    clientId: env.AUTH_CLIENT_ID,
    clientSecret: env.AUTH_CLIENT_SECRET,
  };
  return {
    secret: env.NEXTAUTH_SECRET,
    session: { strategy: "jwt", maxAge: 8 * 60 * 60 },
    pages: { signIn: "/signin", error: "/signin" },
    providers: [
      {
        id: env.AUTH_PROVIDER_ID,
        name: env.AUTH_PROVIDER_NAME,
        type: "oauth",
        wellKnown: discoveryUrl(env.AUTH_ISSUER),
        issuer: env.AUTH_ISSUER,
        clientId: env.AUTH_CLIENT_ID,
        clientSecret: env.AUTH_CLIENT_SECRET,
        authorization: { params: { scope: env.AUTH_SCOPE } },
        checks: ["pkce", "state", "nonce"],
        idToken: true,
        client: { token_endpoint_auth_method: "client_secret_basic" },
        profile(profile: { sub: string; name?: string; email?: string; "cognito:username"?: string }) {
          return {
            id: profile.sub,
            name: profile.name ?? profile["cognito:username"] ?? profile.email ?? profile.sub,
            email: profile.email ?? null,
          };
        },
      },
    ],
    callbacks: {
      jwt: ({ token, account }) => jwtCallback({ token: token as AppJWT, account }, refreshDeps),
      // next-auth's Session type is wider than what we hand out; the cast only widens.
      session: ({ session, token }) => sessionCallback({ session, token: token as AppJWT }) as never,
    },
  };
}
