// One direction of a wire: decides, per packet, whether it is lost and when it leaves. Pure logic
// (time is passed in), so the scheduling rules are testable without TUN devices.
/** A FIFO (or, with `reorder`, due-time ordered) queue of packets waiting out their delay. */
export class DelayLine {
    params;
    stats = { received: 0, forwarded: 0, lost: 0, overflow: 0, writeErrors: 0 };
    queue = [];
    head = 0;
    lastDue = -Infinity;
    random;
    constructor(params, random = Math.random) {
        this.params = params;
        this.random = random;
    }
    /** Packets waiting. */
    get size() {
        return this.queue.length - this.head;
    }
    /** Takes a packet that arrived at `now` (ms, monotonic). Returns what happened to it. */
    offer(packet, now) {
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
            if (due < this.lastDue)
                due = this.lastDue;
            this.lastDue = due;
            this.queue.push({ due, packet });
            return 'queued';
        }
        this.insertSorted({ due, packet });
        return 'queued';
    }
    /** When the next packet is due (ms), or undefined when nothing is held. */
    nextDue() {
        return this.head < this.queue.length ? this.queue[this.head].due : undefined;
    }
    /** The next packet if it is due at `now`, removed from the queue. */
    takeDue(now) {
        const next = this.queue[this.head];
        if (next === undefined || next.due > now)
            return undefined;
        this.queue[this.head] = undefined;
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
            this.queue = this.queue.slice(this.head);
            this.head = 0;
        }
        return next.packet;
    }
    insertSorted(item) {
        let lo = this.head;
        let hi = this.queue.length;
        while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (this.queue[mid].due <= item.due)
                lo = mid + 1;
            else
                hi = mid;
        }
        this.queue.splice(lo, 0, item);
    }
}
