// A child signal for one operation: it aborts when a long-lived parent signal aborts or when the
// operation's own timeout passes, whichever comes first. On Node 20, `AbortSignal.any([parent, x])`
// keeps every combined signal (and whatever listens on it: a request's callbacks and its body)
// reachable from `parent` until `parent` aborts (nodejs/node#55351, #54614): a sink or a prober
// that lives for weeks then leaks one request per write. Here the child has its own controller,
// the parent's abort is forwarded by a listener that `dispose()` removes, and the timer is
// cleared, so once the operation ends nothing long-lived points at it.

/** Why a linked signal aborted. */
export type LinkedReason = 'parent' | 'timeout' | 'self';

/** One operation's signal, linked to a parent; call `dispose()` when the operation ends. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** why it aborted, or undefined while it has not */
  readonly reason: LinkedReason | undefined;
  /** aborts the child alone (the parent is untouched) */
  abort(reason?: unknown): void;
  /** detaches from the parent and clears the timer; idempotent */
  dispose(): void;
}

/**
 * A signal that aborts with `parent` (forwarding its reason) or after `timeoutMs` (a
 * `TimeoutError` DOMException, as `AbortSignal.timeout`). Both are optional.
 */
export function linkSignal(parent: AbortSignal | undefined, timeoutMs?: number): LinkedSignal {
  const ctl = new AbortController();
  let reason: LinkedReason | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onParentAbort = () => {
    if (reason !== undefined) return;
    reason = 'parent';
    dispose();
    ctl.abort(parent?.reason);
  };
  const dispose = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    parent?.removeEventListener('abort', onParentAbort);
  };
  if (parent?.aborted) {
    reason = 'parent';
    ctl.abort(parent.reason);
  } else {
    parent?.addEventListener('abort', onParentAbort, { once: true });
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      timer = setTimeout(
        () => {
          if (reason !== undefined) return;
          reason = 'timeout';
          dispose();
          ctl.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
        },
        Math.max(0, timeoutMs),
      );
    }
  }
  return {
    signal: ctl.signal,
    get reason() {
      return reason;
    },
    abort(why?: unknown) {
      if (reason !== undefined) return;
      reason = 'self';
      dispose();
      ctl.abort(why);
    },
    dispose,
  };
}

/**
 * Runs `fn` with a signal linked to `parent` and bounded by `timeoutMs`, and unlinks it when
 * `fn` settles, whatever the outcome.
 */
export async function withLinkedSignal<T>(
  parent: AbortSignal | undefined,
  timeoutMs: number | undefined,
  fn: (link: LinkedSignal) => Promise<T>,
): Promise<T> {
  const link = linkSignal(parent, timeoutMs);
  try {
    return await fn(link);
  } finally {
    link.dispose();
  }
}
