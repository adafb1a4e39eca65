// One direction of a wire: decides, per packet, whether it is lost and when it leaves. Pure logic
// (time is passed in), so the scheduling rules are testable without TUN devices.

/** How one direction of a link treats packets. */
export interface DirectionParams {
  /** fixed one-way delay in ms: the floor every packet sees */
  delayMs: number;
  /** extra delay per packet, uniform in [0, jitterMs] ms (mean jitterMs / 2) */
  jitterMs: number;
  /** share of packets dropped, 0..100 (independent per packet) */
  lossPct: number;
  /** let jitter reorder packets; by default a packet never leaves before the one sent before it */
  reorder: boolean;
  /** packets held at most; beyond it new packets are dropped (tail drop) */
  queueLimit: number;
}

/** Counters for one direction. */
export interface DirectionStats {
  received: number;
  forwarded: number;
  lost: number;
  overflow: number;
  /** writes the far end refused (its interface is down, for one) */
  writeErrors: number;
}

interface Held {
  due: number;
  packet: Buffer;
}

/** A FIFO (or, with `reorder`, due-time ordered) queue of packets waiting out their delay. */
export class DelayLine {
  readonly params: DirectionParams;
  readonly stats: DirectionStats = { received: 0, forwarded: 0, lost: 0, overflow: 0, writeErrors: 0 };
  private queue: Held[] = [];
  private head = 0;
  private lastDue = -Infinity;
  private readonly random: () => number;

  constructor(params: DirectionParams, random: () => number = Math.random) {
    this.params = params;
    this.random = random;
  }

  /** Packets waiting. */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** Takes a packet that arrived at `now` (ms, monotonic). Returns what happened to it. */
  offer(packet: Buffer, now: number): 'queued' | 'lost' | 'overflow' {
    this.stats.received++;
    const { delayMs, jitterMs, lossPct, reorder, queueLimit } = this.params;
    if (lossPct > 0 && this.random() * 100 < lossPct) {
      this.stats.lost++;
      return 'lost';
    }
    if (this.size >= queueLimit) {
      this.stats.overflow++;
      return 'overflow';
    }
    let due = now + delayMs + (jitterMs > 0 ? this.random() * jitterMs : 0);
    if (!reorder) {
      // Order is kept by holding a packet until the one before it has left; with no jitter this
      // never changes anything (arrival times only grow).
      if (due < this.lastDue) due = this.lastDue;
      this.lastDue = due;
      this.queue.push({ due, packet });
      return 'queued';
    }
    this.insertSorted({ due, packet });
    return 'queued';
  }

  /** When the next packet is due (ms), or undefined when nothing is held. */
  nextDue(): number | undefined {
    return this.head < this.queue.length ? this.queue[this.head]!.due : undefined;
  }

  /** The next packet if it is due at `now`, removed from the queue. */
  takeDue(now: number): Buffer | undefined {
    const next = this.queue[this.head];
    if (next === undefined || next.due > now) return undefined;
    this.queue[this.head] = undefined as unknown as Held;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return next.packet;
  }

  private insertSorted(item: Held): void {
    let lo = this.head;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.queue[mid]!.due <= item.due) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, item);
  }
}
