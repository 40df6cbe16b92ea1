// Retry with exponential backoff and jitter, for calls that fail transiently: a store restarting,
// a dropped connection, throttling. Which errors are transient is the caller's call.

export interface RetryOptions {
  /** Tries in all, the first included (default 5). */
  attempts?: number;
  /** Delay cap before the first retry, doubled for each further one (default 100 ms). */
  baseMs?: number;
  /** Largest delay cap (default 5 s). */
  maxMs?: number;
  /** Whether an error deserves another try (default: every error does). */
  isRetryable?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to count or log retries. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Once aborted, stop waiting and give up with the last error (e.g. on close). */
  signal?: AbortSignal;
}

/** Calls fn(attempt) until it resolves, the error is not retryable, or the attempts run out. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const baseMs = opts.baseMs ?? 100;
  const maxMs = opts.maxMs ?? 5_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || opts.signal?.aborted || !(opts.isRetryable?.(err) ?? true)) throw err;
      const delayMs = backoffMs(attempt, baseMs, maxMs);
      opts.onRetry?.(err, attempt, delayMs);
      if (!(await sleep(delayMs, opts.signal))) throw err;
    }
  }
}

/**
 * Delay after the given failed attempt: "equal jitter", half the capped exponential delay plus up
 * to as much again at random. The random half keeps many uploaders from retrying in step; the
 * fixed half guarantees a known least total patience, so a retry budget reliably spans an outage.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return cap / 2 + (random() * cap) / 2;
}

// Resolves true after ms, or false as soon as the signal aborts.
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
