// Long storage loops (writing a block, merging blocks, a query decoding row groups) allocate in
// bursts between I/O waits. They call storageStep() between steps so the server's heap governor
// can look at the heap there; storage itself knows nothing of what the hook does.

let hook: (() => void) | null = null;

/** Sets the one hook (the server's heap governor), or clears it with null. */
export function onStorageStep(fn: (() => void) | null): void {
  hook = fn;
}

export function storageStep(): void {
  hook?.();
}

let releasedHook: (() => void) | null = null;

/** Sets the hook run when a block write or merge has let go of a large working set (the server's heap governor). */
export function onStorageReleased(fn: (() => void) | null): void {
  releasedHook = fn;
}

/**
 * A block write or merge has just let go of a large working set (a source's decoded symbols, the
 * rows' buffers, or everything, at its end): it is garbage now, all at once, and worth collecting
 * before the next phase allocates over it.
 */
export function storageReleased(): void {
  releasedHook?.();
}

/**
 * A block write or merge has written a row group: the governor looks at the heap (a large series
 * spans many groups, and their pages are garbage by now), then the process serves requests, since
 * a large write takes seconds and its own steps are synchronous.
 */
export function storageGroupWritten(): Promise<void> {
  hook?.();
  return new Promise<void>((resolve) => setImmediate(resolve));
}
