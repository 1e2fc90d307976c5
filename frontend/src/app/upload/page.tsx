import { UploadForm } from "./UploadForm";

export default function UploadPage() {
  return (
    <section>
      <h1>Upload documents</h1>
      <p className="muted">PDF files; each page is rendered, embedded and indexed for search and chat.</p>
      <UploadForm />
    </section>
  );
}
