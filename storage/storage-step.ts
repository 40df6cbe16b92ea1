// Long storage loops (writing a block, merging blocks) allocate in bursts between I/O waits. They
// call storageStep() between series so the server's heap governor can look at the heap there,
// instead of only on its timer; storage itself knows nothing of what the hook does.

let hook: (() => void) | null = null;

/** Sets the one hook (the server's heap governor), or clears it with null. */
export function onStorageStep(fn: (() => void) | null): void {
  hook = fn;
}

export function storageStep(): void {
  hook?.();
}

let doneHook: (() => void) | null = null;

/** Sets the hook run when a block write or merge has finished (the server's heap governor). */
export function onStorageDone(fn: (() => void) | null): void {
  doneHook = fn;
}

/** A block write or merge finished: what it held is garbage now, all at once. */
export function storageDone(): void {
  doneHook?.();
}
