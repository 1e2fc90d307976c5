"use client";

import { useRouter } from "next/navigation";
import { signIn, useSession } from "next-auth/react";
import { useEffect } from "react";

const BOUNCE_KEY = "vr-signin-return";
const BOUNCE_WINDOW_MS = 15_000;

export function SignInButton(props: { providerId: string; providerName: string; callbackUrl: string }) {
  const { data: session, status } = useSession();
  const router = useRouter();

  // A page sends a signed-in user here when its access token had expired (no tab was open to refresh it). Loading
  // the session refreshes it in the cookie, so go straight back, once: a second bounce within seconds means the
  // refresh did not stick, and the user signs in again.
  useEffect(() => {
    if (status !== "authenticated" || (session as { error?: string } | null)?.error) return;
    const last = Number(sessionStorage.getItem(BOUNCE_KEY) ?? 0);
    if (Date.now() - last < BOUNCE_WINDOW_MS) return;
    sessionStorage.setItem(BOUNCE_KEY, String(Date.now()));
    router.replace(props.callbackUrl);
  }, [status, session, router, props.callbackUrl]);

  return (
    <button type="button" className="primary" onClick={() => void signIn(props.providerId, { callbackUrl: props.callbackUrl })}>
      Sign in with {props.providerName}
    </button>
  );
}
