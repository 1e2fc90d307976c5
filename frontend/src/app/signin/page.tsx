import { serverEnv } from "@/env";

import { SignInButton } from "./SignInButton";

const MESSAGES: Record<string, string> = {
  OAuthCallback: "The sign-in did not complete. Please try again.",
  OAuthSignin: "The identity provider could not be reached.",
  AccessDenied: "Access was denied.",
  SessionRequired: "Please sign in to continue.",
};

/** Only same-origin paths: an absolute callbackUrl would make this an open redirect. */
function safeCallback(value: string | string[] | undefined): string {
  const path = Array.isArray(value) ? value[0] : value;
  return path && path.startsWith("/") && !path.startsWith("//") ? path : "/upload";
}

export default async function SignInPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const params = await searchParams;
  const env = serverEnv();
  const error = typeof params.error === "string" ? (MESSAGES[params.error] ?? "Sign-in failed.") : null;
  return (
    <section className="card narrow">
      <h1>Sign in</h1>
      <p>Use your organisation&apos;s account to search and chat over your documents.</p>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <SignInButton providerId={env.AUTH_PROVIDER_ID} providerName={env.AUTH_PROVIDER_NAME} callbackUrl={safeCallback(params.callbackUrl)} />
    </section>
  );
}
