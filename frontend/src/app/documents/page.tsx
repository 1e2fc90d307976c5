import { cookies } from "next/headers";
import { redirect } from "next/navigation";

import { serverEnv } from "@/env";
import { apiClient, getDocument, type DocumentView } from "@/lib/api/client";
import { accessToken } from "@/lib/auth/token";
import { RECENT_COOKIE, parseRecent } from "@/lib/recent";

import { DocumentActions } from "./DocumentActions";

export default async function DocumentsPage() {
  const token = await accessToken();
  if (!token) redirect("/signin?callbackUrl=/documents");
  const client = apiClient(serverEnv().API_URL, token);
  const ids = parseRecent((await cookies()).get(RECENT_COOKIE)?.value);
  // Gone (deleted elsewhere) or someone else's: the API says 404 and the row is left out.
  const documents = (await Promise.all(ids.map((id) => getDocument(client, id)))).filter(
    (doc): doc is DocumentView => doc !== null,
  );
  return (
    <section>
      <h1>Documents</h1>
      <p className="muted">The documents uploaded from this browser. Export gives everything stored about one; delete removes its pages, vectors and file.</p>
      {documents.length === 0 ? (
        <p className="muted">No documents yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>File</th>
              <th>Pages</th>
              <th>Indexed</th>
              <th>Uploaded</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {documents.map((doc) => (
              <tr key={doc.document_id} data-testid="document-row">
                <td>{doc.filename}</td>
                <td>{doc.pages}</td>
                <td>{doc.indexed_pages}</td>
                <td>{doc.uploaded_at.slice(0, 19).replace("T", " ")}</td>
                <td>
                  <DocumentActions documentId={doc.document_id} filename={doc.filename} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
