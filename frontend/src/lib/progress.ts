/** Job progress as the upload page shows it, from the API's JobView events (states: app/services/jobs.py). */
import type { JobView } from "@/lib/api/client";

export const TERMINAL_STATES = new Set(["succeeded", "failed", "cancelled"]);

export interface JobProgress {
  jobId: string;
  documentId: string;
  filename: string;
  state: string;
  stage: string;
  percent: number;
  pages: string;
  error: string;
}

export function fromJobView(view: JobView): JobProgress {
  return {
    jobId: view.job_id,
    documentId: view.document_id,
    filename: view.filename,
    state: view.state,
    stage: view.stage,
    percent: Math.round(Math.min(1, Math.max(0, view.progress)) * 100),
    pages: view.pages_total ? `${view.pages_done}/${view.pages_total} pages` : "",
    error: view.error,
  };
}

export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.has(state);
}
