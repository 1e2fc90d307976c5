import Image from "next/image";

import type { SearchItem } from "@/lib/api/client";
import { isPageImage } from "@/lib/images";

/** One retrieved page: its thumbnail (opens the full image) and label. */
export function PageThumb({ item, pagesOrigin }: { item: SearchItem; pagesOrigin: string }) {
  const url = item.image_url;
  return (
    <li data-testid="page-result">
      {isPageImage(url, pagesOrigin) ? (
        <a href={url} target="_blank" rel="noopener noreferrer" data-testid="page-image-link">
          {/* unoptimized: the browser fetches the presigned URL itself (see next.config.ts) */}
          <Image src={url} alt={item.label} width={240} height={340} unoptimized />
        </a>
      ) : (
        <p className="muted">no image</p>
      )}
      <div>{item.label}</div>
      <div className="muted">score {item.score.toFixed(3)}</div>
    </li>
  );
}
