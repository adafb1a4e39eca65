// Where the demo writes. On a terminal it redraws one screen (what runs where, the table, the
// newest log lines) each time something changes; into a pipe or file it appends plain lines, so a
// log of a demo run reads top to bottom.
import { appendFileSync } from 'node:fs';
const RECENT_LINES = 8;
function stamp(line) {
    return `${new Date().toISOString().slice(11, 19)} ${line}`;
}
export class DemoScreen {
    out;
    logFile;
    intro = [];
    table = [];
    recent = [];
    constructor(out, 
    /** every log line is also appended here (plain text) */
    logFile) {
        this.out = out;
        this.logFile = logFile;
    }
    get tty() {
        return this.out.isTTY === true && process.env.TERM !== 'dumb';
    }
    /** A progress or warning line. */
    log(line) {
        const text = stamp(line);
        if (this.logFile) {
            try {
                appendFileSync(this.logFile, `${text}\n`);
            }
            catch {
                // the log file is a convenience; the screen still shows the line
            }
        }
        if (!this.tty || this.intro.length === 0) {
            this.out.write(`${text}\n`);
            return;
        }
        this.recent.push(...text.split('\n'));
        this.recent.splice(0, Math.max(0, this.recent.length - RECENT_LINES));
        this.redraw();
    }
    /** What runs where and what to try: printed once, kept on top of a redrawn screen. */
    setIntro(lines) {
        this.intro = lines;
        if (this.tty)
            this.redraw();
        else
            this.out.write(`${lines.join('\n')}\n\n`);
    }
    /** A new benefit table. */
    setTable(lines) {
        this.table = lines;
        if (this.tty)
            this.redraw();
        else
            this.out.write(`${lines.join('\n')}\n\n`);
    }
    /** Leaves the redrawn screen as it is and goes back to plain lines (shutdown). */
    release() {
        this.intro = [];
    }
    redraw() {
        const parts = [...this.intro, '', ...this.table];
        if (this.recent.length > 0)
            parts.push('', ...this.recent);
        // Home, clear the screen, draw: a whole frame per write, so it never shows half a table.
        this.out.write(`\x1b[H\x1b[2J${parts.join('\n')}\n`);
    }
}
