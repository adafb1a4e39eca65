/** What the driver measures: one row of the accuracy table each. */
export const ACCURACY_METRICS = ['udp rtt', 'tcp connect (kernel)', 'tcp connect (monotonic)', 'tcp rtt (echo)', 'http ttfb', 'http ttfb (monotonic)', 'icmp rtt', 'dns query'];
/**
 * Measured besides, for the echo-clock table: the same echo timed by the monotonic clock (a second
 * prober), next to the default kernel clock's `tcp rtt (echo)`.
 */
export const EXTRA_METRICS = ['tcp rtt (echo, monotonic clock)'];
/** What a SampleRecord's first element indexes. */
export const SAMPLE_METRICS = [...ACCURACY_METRICS, ...EXTRA_METRICS];
