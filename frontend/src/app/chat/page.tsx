import { serverEnv } from "@/env";

import { Chat } from "./Chat";

export default function ChatPage() {
  return (
    <section>
      <h1>Chat</h1>
      <p className="muted">Answers cite the pages they were given; the pages are shown under each answer.</p>
      <Chat pagesOrigin={serverEnv().PAGES_IMAGE_ORIGIN} />
    </section>
  );
}
