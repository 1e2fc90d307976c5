"use client";

import Link from "next/link";
import { signOut } from "next-auth/react";

const LINKS = [
  { href: "/upload", label: "Upload" },
  { href: "/search", label: "Search" },
  { href: "/chat", label: "Chat" },
  { href: "/documents", label: "Documents" },
];

export function Nav({ user }: { user: string | null }) {
  return (
    <header className="nav">
      <Link href="/" className="brand">
        VisionRAG
      </Link>
      {user && (
        <nav aria-label="main">
          {LINKS.map((link) => (
            <Link key={link.href} href={link.href}>
              {link.label}
            </Link>
          ))}
        </nav>
      )}
      {user && (
        <div className="who">
          <span data-testid="user">{user}</span>
          <button type="button" onClick={() => void signOut({ callbackUrl: "/signin" })}>
            Sign out
          </button>
        </div>
      )}
    </header>
  );
}
