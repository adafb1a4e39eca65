import { formatDuration } from "../util/duration.js";
/** A duration for a message: `2s`, `11.8s`, `450ms` (formatDuration, with decimals for seconds). */
export function human(ms) {
    if (ms >= 1000 && ms < 60_000 && ms % 1000 !== 0)
        return `${Number((ms / 1000).toFixed(3))}s`;
    return formatDuration(ms);
}
