import { inspect } from 'node:util';
/**
 * A credential (the InfluxDB token). It prints as `<redacted>` everywhere — logs, errors,
 * `JSON.stringify`, `util.inspect` — and only `reveal()` hands out the text, at the one place
 * that sends it.
 */
export class Secret {
    #value;
    constructor(value) {
        this.#value = value;
    }
    reveal() {
        return this.#value;
    }
    toString() {
        return '<redacted>';
    }
    toJSON() {
        return '<redacted>';
    }
    [inspect.custom]() {
        return '<redacted>';
    }
}
