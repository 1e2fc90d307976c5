"use client";

import { useState, type FormEvent } from "react";

import type { ChatResponse, SearchItem } from "@/lib/api/client";
import { PageThumb } from "@/components/PageThumb";

interface Turn {
  role: "user" | "assistant";
  content: string;
  images?: SearchItem[];
}

/** The API keeps at most 20 history turns of 4000 characters. */
export function history(turns: Turn[]): Array<{ role: Turn["role"]; content: string }> {
  return turns.slice(-20).map((turn) => ({ role: turn.role, content: turn.content.slice(0, 4000) }));
}

export function Chat({ pagesOrigin }: { pagesOrigin: string }) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const message = String(new FormData(form).get("message") ?? "").trim();
    if (!message) return;
    setBusy(true);
    setError(null);
    try {
      const response = await fetch("/api/proxy/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message, chat_history: history(turns) }),
      });
      const body = (await response.json().catch(() => null)) as (ChatResponse & { detail?: unknown }) | null;
      if (!response.ok || !body) {
        setError(typeof body?.detail === "string" ? body.detail : `chat failed (${response.status})`);
        return;
      }
      setTurns((current) => [
        ...current,
        { role: "user", content: message },
        { role: "assistant", content: body.text, images: body.images },
      ]);
      form.reset();
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <div aria-live="polite">
        {turns.map((turn, index) => (
          <div key={index} className={`turn card ${turn.role}`} data-testid={`turn-${turn.role}`}>
            <p>{turn.content}</p>
            {turn.images && turn.images.length > 0 && (
              <ul className="results" aria-label="cited pages">
                {turn.images.map((item, i) => (
                  <PageThumb key={`${item.label}-${i}`} item={item} pagesOrigin={pagesOrigin} />
                ))}
              </ul>
            )}
          </div>
        ))}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <form className="row card" onSubmit={(event) => void send(event)}>
        <input type="text" name="message" placeholder="Ask a question" aria-label="message" maxLength={4000} />
        <button className="primary" type="submit" disabled={busy}>
          {busy ? "Thinking..." : "Send"}
        </button>
      </form>
    </>
  );
}
