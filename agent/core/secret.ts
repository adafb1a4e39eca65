import { inspect } from 'node:util';

/**
 * A credential (the InfluxDB token). It prints as `<redacted>` everywhere — logs, errors,
 * `JSON.stringify`, `util.inspect` — and only `reveal()` hands out the text, at the one place
 * that sends it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '<redacted>';
  }

  toJSON(): string {
    return '<redacted>';
  }

  [inspect.custom](): string {
    return '<redacted>';
  }
}
