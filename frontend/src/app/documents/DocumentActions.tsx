"use client";

import { useRouter } from "next/navigation";
import { useState } from "react";

export function DocumentActions({ documentId, filename }: { documentId: string; filename: string }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function remove() {
    if (!window.confirm(`Delete ${filename} and everything indexed from it?`)) return;
    setBusy(true);
    const response = await fetch(`/api/proxy/documents/${documentId}`, { method: "DELETE" });
    if (response.ok || response.status === 404) {
      await fetch("/api/recent-documents", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ remove: documentId }),
      });
      router.refresh();
    } else {
      setError(`delete failed (${response.status})`);
    }
    setBusy(false);
  }

  return (
    <span>
      <a href={`/api/proxy/documents/${documentId}/export`} target="_blank" rel="noopener noreferrer">
        Export
      </a>{" "}
      <button type="button" className="danger" disabled={busy} onClick={() => void remove()}>
        Delete
      </button>
      {error && <span className="error"> {error}</span>}
    </span>
  );
}
