// Is a lab already up on this machine, and is it alive or what a crash left behind? Namespace names
// are global, so one lab runs at a time: a second demo (or a test) has to wait or clean up.
import { isAlive, labDir, labNamespaces } from "../lab/index.js";
import { readState } from "../lab/state.js";
/** `lab up` gives up on a part after 30 s; a lab still starting after this is a crash's leftover. */
const STARTING_GRACE_MS = 60_000;
/** `running`: a lab whose processes are alive; `leftovers`: namespaces or state without them. */
export function labPresence(dir) {
    let state;
    try {
        state = readState(labDir(dir));
    }
    catch {
        state = undefined;
    }
    if (state?.processes.some((p) => isAlive(p)))
        return 'running';
    // A lab being built has state before it has processes: young enough, it is someone's `lab up`.
    if (state?.phase === 'starting' && Date.now() - Date.parse(state.createdAt) < STARTING_GRACE_MS)
        return 'running';
    return state !== undefined || labNamespaces().length > 0 ? 'leftovers' : 'free';
}
/**
 * Waits until no live lab runs (polling every second) and returns what it found then; gives up
 * after `timeoutMs` and returns `running`.
 */
export async function waitForLabFree(timeoutMs, dir) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const p = labPresence(dir);
        if (p !== 'running' || Date.now() >= deadline)
            return p;
        await new Promise((r) => setTimeout(r, 1_000));
    }
}
