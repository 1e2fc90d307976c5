"use client";

import Link from "next/link";
import { useEffect, useRef, useState, type FormEvent } from "react";

import type { JobView } from "@/lib/api/client";
import { fromJobView, isTerminal, type JobProgress } from "@/lib/progress";

interface Accepted {
  job_id: string;
  jobs: Array<{ job_id: string; document_id: string; filename: string }>;
}

async function detail(response: Response): Promise<string> {
  const body = (await response.json().catch(() => null)) as { detail?: unknown } | null;
  return typeof body?.detail === "string" ? body.detail : `upload failed (${response.status})`;
}

export function UploadForm() {
  const [jobs, setJobs] = useState<Record<string, JobProgress>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const streams = useRef<EventSource[]>([]);

  useEffect(() => () => streams.current.forEach((stream) => stream.close()), []);

  function update(view: JobView) {
    setJobs((current) => ({ ...current, [view.job_id]: fromJobView(view) }));
  }

  /** Live progress over SSE (through the same-origin proxy); one final GET if the stream drops. */
  function watch(jobId: string) {
    const stream = new EventSource(`/api/proxy/progress/stream/${jobId}`);
    streams.current.push(stream);
    stream.addEventListener("progress", (event) => update(JSON.parse((event as MessageEvent<string>).data) as JobView));
    stream.addEventListener("done", () => stream.close());
    stream.onerror = () => {
      stream.close();
      void fetch(`/api/proxy/jobs/${jobId}`, { cache: "no-store" }).then(async (response) => {
        if (!response.ok) return;
        const view = (await response.json()) as JobView;
        update(view);
        if (!isTerminal(view.state)) setTimeout(() => watch(jobId), 2000);
      });
    };
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    const form = new FormData(event.currentTarget);
    if (form.getAll("files").every((file) => !(file instanceof File) || file.size === 0)) {
      setError("Choose at least one PDF.");
      return;
    }
    setBusy(true);
    try {
      const response = await fetch("/api/proxy/index", { method: "POST", body: form });
      if (response.status !== 202) {
        setError(await detail(response));
        return;
      }
      const accepted = (await response.json()) as Accepted;
      await fetch("/api/recent-documents", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ add: accepted.jobs.map((job) => job.document_id) }),
      });
      for (const job of accepted.jobs) {
        setJobs((current) => ({
          ...current,
          [job.job_id]: {
            jobId: job.job_id,
            documentId: job.document_id,
            filename: job.filename,
            state: "queued",
            stage: "",
            percent: 0,
            pages: "",
            error: "",
          },
        }));
        watch(job.job_id);
      }
      event.currentTarget?.reset();
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <form className="card" onSubmit={(event) => void submit(event)}>
        <input type="file" name="files" accept="application/pdf,.pdf" multiple aria-label="PDF files" />
        <button className="primary" type="submit" disabled={busy}>
          {busy ? "Uploading..." : "Upload"}
        </button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {Object.values(jobs).map((job) => (
        <div key={job.jobId} className="card" data-testid="job" data-state={job.state}>
          <strong>{job.filename}</strong> <span data-testid="job-state">{job.state}</span>{" "}
          <span className="muted">
            {job.stage !== job.state ? job.stage : ""} {job.pages}
          </span>
          <progress max={100} value={job.percent} aria-label={`${job.filename} progress`} />
          {job.error && <p className="error">{job.error}</p>}
          {job.state === "succeeded" && <Link href="/documents">View in documents</Link>}
        </div>
      ))}
    </>
  );
}
