/** What the copy engine reports while it runs; a progress display or a log listens to these. */
import type { Descriptor } from '../core/descriptor.js';

/** The part a blob plays, for displays. */
export type BlobRole = 'layer' | 'config' | 'blob';

export type CopyEvent =
  /** A blob starts streaming from the source. */
  | { readonly type: 'blob-start'; readonly desc: Descriptor; readonly role: BlobRole }
  /** Source bytes read so far for this blob (cumulative). */
  | { readonly type: 'blob-progress'; readonly desc: Descriptor; readonly bytes: number }
  /** The blob is stored; `written` differs from `desc` when it was recompressed. */
  | { readonly type: 'blob-done'; readonly desc: Descriptor; readonly written: Descriptor; readonly bytes: number }
  /** Not copied: already at the destination, or copied earlier in this run. */
  | { readonly type: 'blob-skip'; readonly desc: Descriptor; readonly reason: 'exists' | 'duplicate' }
  /** A manifest or index is stored; `written` differs from `desc` when it was rewritten. */
  | { readonly type: 'manifest-done'; readonly desc: Descriptor; readonly written: Descriptor }
  /** Something the user should know (an entry left out, annotations dropped in a conversion). */
  | { readonly type: 'note'; readonly message: string };

export type CopyEventListener = (event: CopyEvent) => void;
