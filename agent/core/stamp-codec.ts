// STAMP test packets (RFC 8762) with the optional TLVs of RFC 8972, shared by the Session-Sender
// (probe/udp.ts) and the Session-Reflector (reflector/stamp.ts).
//
// Decoding is total: every Buffer either decodes to a packet whose every length was checked, or
// to a reason it is not one. Nothing here throws on input from the network.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { AnylatError } from '../util/errors.ts';

/** Base packet sizes in octets, the same in both directions (RFC 8762 §4.2, §4.3). */
export const UNAUTH_BASE_BYTES = 44;
export const AUTH_BASE_BYTES = 112;
/** Authenticated packets carry HMAC-SHA-256 truncated to 16 octets over octets 0..95 (RFC 8762 §4.4). */
export const HMAC_BYTES = 16;
const AUTH_HMAC_OFFSET = 96;

/** Largest test packet either side accepts: a UDP payload that fits a 1500-byte IPv4 MTU unfragmented. */
export const MAX_PACKET_BYTES = 1472;

/** RFC 8972 §4: Flags(1) Type(1) Length(2), then Length octets of value. */
export const TLV_HEADER_BYTES = 4;
/** RFC 8972 §4.2 Extra Padding. */
export const TLV_EXTRA_PADDING = 1;
/** RFC 8972 §4.8 HMAC: last TLV, HMAC over the Sequence Number and every TLV before it. */
export const TLV_HMAC = 8;
/**
 * anylat's site TLV: the sender reserves a zero-filled value, the reflector writes its site name
 * (UTF-8, zero-padded) into it. 252 is the first type of the Private Use range (252-254) of the
 * IANA "STAMP TLV Types" registry.
 */
export const TLV_SITE = 252;
/** TLV flag bits (RFC 8972 §4): Unrecognized, Malformed, Integrity check failed. */
export const TLV_FLAG_U = 0x80;
export const TLV_FLAG_M = 0x40;
export const TLV_FLAG_I = 0x20;

/** Default bytes the sender reserves for the site name. */
export const DEFAULT_SITE_TLV_BYTES = 32;
/** Largest site value a sender may reserve (keeps an authenticated packet well under MAX_PACKET_BYTES). */
export const MAX_SITE_TLV_BYTES = 1024;

/**
 * Error Estimate (RFC 4656 §4.1.2): S=0 (the clock is not known to be synchronized to UTC),
 * Z=0 (NTP format), Scale=22, Multiplier=1, i.e. 1 × 2^(22−32) s ≈ 0.98 ms: timestamps are read
 * in an event-loop callback, so we vouch for nothing finer than about a millisecond.
 */
export const ERROR_ESTIMATE = errorEstimate({ synchronized: false, scale: 22, multiplier: 1 });

/** Packs an Error Estimate field. `multiplier` must not be 0 (RFC 4656). */
export function errorEstimate(e: { synchronized: boolean; scale: number; multiplier: number }): number {
  return ((e.synchronized ? 1 : 0) << 15) | ((e.scale & 0x3f) << 8) | (Math.max(1, e.multiplier) & 0xff);
}

/** Decoded Error Estimate and the error it states, in seconds. */
export function readErrorEstimate(field: number): {
  synchronized: boolean;
  ptp: boolean;
  scale: number;
  multiplier: number;
  seconds: number;
} {
  const scale = (field >> 8) & 0x3f;
  const multiplier = field & 0xff;
  return {
    synchronized: (field & 0x8000) !== 0,
    ptp: (field & 0x4000) !== 0,
    scale,
    multiplier,
    seconds: multiplier * 2 ** (scale - 32),
  };
}

// ---- NTP 64-bit timestamps: seconds since 1900-01-01 (32 bits) . fraction (32 bits) ----

const NTP_UNIX_OFFSET_S = 2_208_988_800n;
const TWO_32 = 4_294_967_296;

/** NTP timestamp for a Unix time in milliseconds (fractional ms kept to ~0.23 ns). */
export function ntpFromUnixMs(unixMs: number): bigint {
  const whole = Math.floor(unixMs / 1000);
  const frac = Math.min(TWO_32 - 1, Math.round(((unixMs - whole * 1000) / 1000) * TWO_32));
  const seconds = (BigInt(whole) + NTP_UNIX_OFFSET_S) & 0xffff_ffffn;
  return (seconds << 32n) | BigInt(frac);
}

/** Unix milliseconds for an NTP timestamp, assuming era 0 (1900-2036) wraps into era 1. */
export function unixMsFromNtp(ntp: bigint): number {
  let seconds = ntp >> 32n;
  // Era 1 starts 2036-02-07; a small seconds value then means after the wrap, not before 1968.
  if (seconds < 0x8000_0000n) seconds += 0x1_0000_0000n;
  const frac = Number(ntp & 0xffff_ffffn) / TWO_32;
  return Number(seconds - NTP_UNIX_OFFSET_S) * 1000 + frac * 1000;
}

/** `later − earlier` in milliseconds, across an era wrap (the difference must be under 68 years). */
export function ntpDiffMs(later: bigint, earlier: bigint): number {
  const diff = BigInt.asIntN(64, later - earlier);
  return (Number(diff >> 32n) + Number(diff & 0xffff_ffffn) / TWO_32) * 1000;
}

/**
 * Wall clock for timestamps, with sub-millisecond resolution: the monotonic clock plus an anchor
 * to Unix time. Re-anchor now and then (a stepped system clock) but take both timestamps of one
 * packet with the same anchor, so their difference is purely monotonic.
 */
export class WallClock {
  private anchor = Date.now() - performance.now();
  private anchoredAt = performance.now();

  /** Unix ms at the monotonic reading `perfNow`. */
  unixMs(perfNow: number): number {
    return this.anchor + perfNow;
  }

  /** Re-reads the anchor when it is older than `maxAgeMs`; call between packets, never inside one. */
  refresh(maxAgeMs = 60_000): void {
    const now = performance.now();
    if (now - this.anchoredAt < maxAgeMs) return;
    this.anchor = Date.now() - now;
    this.anchoredAt = now;
  }

  ntp(perfNow: number): bigint {
    return ntpFromUnixMs(this.unixMs(perfNow));
  }
}

// ---- TLVs ----

export interface Tlv {
  flags: number;
  type: number;
  /** a copy, never a view into a received datagram */
  value: Buffer;
}

/** How the TLV area after a base packet was read. */
export interface TlvArea {
  tlvs: Tlv[];
  /** an all-zero tail (TWAMP-Light style padding) instead of TLVs: its length, echoed as zeros */
  padding: number;
  /** an HMAC TLV ended the list and verified (authenticated mode only) */
  tlvHmacValid: boolean;
}

export type DecodeFailure = 'too_short' | 'too_long' | 'bad_hmac' | 'bad_tlv' | 'bad_tlv_hmac';

export type Decoded<T> = { ok: true; packet: T } | { ok: false; reason: DecodeFailure; detail: string };

function fail<T>(reason: DecodeFailure, detail: string): Decoded<T> {
  return { ok: false, reason, detail };
}

function writeTlv(buf: Buffer, offset: number, t: Tlv): number {
  buf.writeUInt8(t.flags & 0xff, offset);
  buf.writeUInt8(t.type & 0xff, offset + 1);
  buf.writeUInt16BE(t.value.length, offset + 2);
  t.value.copy(buf, offset + TLV_HEADER_BYTES);
  return offset + TLV_HEADER_BYTES + t.value.length;
}

/** HMAC-SHA-256 truncated to 16 octets (RFC 8762 §4.4). */
export function stampHmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, HMAC_BYTES);
}

function hmacEquals(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Reads the TLV area `buf[start..]`. `seqField` is the packet's 4-octet Sequence Number, which the
 * RFC 8972 HMAC TLV covers together with the TLVs before it.
 */
function readTlvArea(buf: Buffer, start: number, seqField: Buffer, key: Buffer | undefined): Decoded<TlvArea> {
  const end = buf.length;
  if (start === end) return { ok: true, packet: { tlvs: [], padding: 0, tlvHmacValid: false } };
  let allZero = true;
  for (let i = start; i < end; i++) {
    if (buf[i] !== 0) {
      allZero = false;
      break;
    }
  }
  if (allZero) return { ok: true, packet: { tlvs: [], padding: end - start, tlvHmacValid: false } };

  const tlvs: Tlv[] = [];
  let offset = start;
  let tlvHmacValid = false;
  while (offset < end) {
    if (end - offset < TLV_HEADER_BYTES) {
      return fail('bad_tlv', `${end - offset} stray octets after the last TLV at offset ${offset}`);
    }
    const flags = buf.readUInt8(offset);
    const type = buf.readUInt8(offset + 1);
    const length = buf.readUInt16BE(offset + 2);
    const valueStart = offset + TLV_HEADER_BYTES;
    if (length > end - valueStart) {
      return fail(
        'bad_tlv',
        `TLV type ${type} at offset ${offset} claims ${length} octets, ${end - valueStart} remain`,
      );
    }
    if (type === TLV_HMAC) {
      if (valueStart + length !== end) return fail('bad_tlv', `HMAC TLV at offset ${offset} is not the last TLV`);
      if (length !== HMAC_BYTES) return fail('bad_tlv', `HMAC TLV has ${length} octets, expected ${HMAC_BYTES}`);
      if (key) {
        const expected = stampHmac(key, seqField, buf.subarray(start, offset));
        if (!hmacEquals(expected, buf.subarray(valueStart, valueStart + length))) {
          return fail('bad_tlv_hmac', 'HMAC TLV does not verify');
        }
        tlvHmacValid = true;
      }
    }
    tlvs.push({ flags, type, value: Buffer.from(buf.subarray(valueStart, valueStart + length)) });
    offset = valueStart + length;
  }
  return { ok: true, packet: { tlvs, padding: 0, tlvHmacValid } };
}

/**
 * Writes `tlvs` (then `padding` zero octets) at `buf[start..]`. An HMAC TLV in `tlvs` is written
 * last; in authenticated mode its value is computed here (RFC 8972 §4.8: over the Sequence Number
 * and every TLV before it), so callers pass it as a placeholder. Unauthenticated, it is copied.
 */
function writeTlvArea(
  buf: Buffer,
  start: number,
  tlvs: readonly Tlv[],
  padding: number,
  key: Buffer | undefined,
): void {
  let offset = start;
  for (const t of tlvs) if (t.type !== TLV_HMAC) offset = writeTlv(buf, offset, t);
  const hmacTlv = tlvs.find((t) => t.type === TLV_HMAC);
  if (hmacTlv) {
    const value = key ? stampHmac(key, buf.subarray(0, 4), buf.subarray(start, offset)) : hmacTlv.value;
    offset = writeTlv(buf, offset, { flags: hmacTlv.flags, type: TLV_HMAC, value });
  }
  buf.fill(0, offset, offset + padding);
}

function tlvAreaBytes(tlvs: readonly Tlv[], padding: number, key: Buffer | undefined): number {
  let n = padding;
  let hmac = false;
  for (const t of tlvs) {
    if (t.type === TLV_HMAC) {
      if (hmac) continue;
      hmac = true;
      n += TLV_HEADER_BYTES + (key ? HMAC_BYTES : t.value.length);
    } else {
      n += TLV_HEADER_BYTES + t.value.length;
    }
  }
  return n;
}

/** The HMAC TLV placeholder a sender appends in authenticated mode so its other TLVs are covered. */
export function hmacTlvPlaceholder(): Tlv {
  return { flags: 0, type: TLV_HMAC, value: Buffer.alloc(HMAC_BYTES) };
}

// ---- Session-Sender test packet ----

/** A Session-Sender test packet (RFC 8762 §4.2; SSID from RFC 8972 §3). */
export interface SenderPacket {
  seq: number;
  timestamp: bigint;
  errorEstimate: number;
  /** Session-Sender Identifier, echoed by the reflector; 0 when unused */
  ssid: number;
  tlvs: Tlv[];
  padding: number;
  /** decoded from an authenticated packet whose HMAC verified */
  authenticated: boolean;
  tlvHmacValid: boolean;
  /** total octets on the wire */
  size: number;
}

export interface SenderPacketInput {
  seq: number;
  timestamp: bigint;
  errorEstimate?: number;
  ssid?: number;
  tlvs?: readonly Tlv[];
  padding?: number;
}

/** Octets of a sender packet with these TLVs; the reflector's reply has the same size. */
export function senderPacketBytes(input: { tlvs?: readonly Tlv[]; padding?: number }, key?: Buffer): number {
  return (key ? AUTH_BASE_BYTES : UNAUTH_BASE_BYTES) + tlvAreaBytes(input.tlvs ?? [], input.padding ?? 0, key);
}

/** Encodes a Session-Sender test packet; authenticated (112-octet base + HMACs) when `key` is given. */
export function encodeSenderPacket(p: SenderPacketInput, key?: Buffer): Buffer {
  const buf = Buffer.alloc(senderPacketBytes(p, key));
  buf.writeUInt32BE(p.seq >>> 0, 0);
  const tsOffset = key ? 16 : 4;
  buf.writeBigUInt64BE(BigInt.asUintN(64, p.timestamp), tsOffset);
  buf.writeUInt16BE((p.errorEstimate ?? ERROR_ESTIMATE) & 0xffff, tsOffset + 8);
  buf.writeUInt16BE((p.ssid ?? 0) & 0xffff, tsOffset + 10);
  const base = key ? AUTH_BASE_BYTES : UNAUTH_BASE_BYTES;
  if (key) stampHmac(key, buf.subarray(0, AUTH_HMAC_OFFSET)).copy(buf, AUTH_HMAC_OFFSET);
  writeTlvArea(buf, base, p.tlvs ?? [], p.padding ?? 0, key);
  return buf;
}

/** Decodes a Session-Sender test packet; with `key`, only an authenticated packet that verifies. */
export function decodeSenderPacket(buf: Buffer, key?: Buffer, maxBytes = MAX_PACKET_BYTES): Decoded<SenderPacket> {
  const base = key ? AUTH_BASE_BYTES : UNAUTH_BASE_BYTES;
  if (buf.length < base)
    return fail(
      'too_short',
      `${buf.length} octets, a ${key ? 'authenticated' : 'unauthenticated'} test packet has at least ${base}`,
    );
  if (buf.length > maxBytes) return fail('too_long', `${buf.length} octets, at most ${maxBytes} accepted`);
  if (key) {
    const expected = stampHmac(key, buf.subarray(0, AUTH_HMAC_OFFSET));
    if (!hmacEquals(expected, buf.subarray(AUTH_HMAC_OFFSET, AUTH_HMAC_OFFSET + HMAC_BYTES))) {
      return fail('bad_hmac', 'packet HMAC does not verify');
    }
  }
  const area = readTlvArea(buf, base, buf.subarray(0, 4), key);
  if (!area.ok) return area;
  const tsOffset = key ? 16 : 4;
  return {
    ok: true,
    packet: {
      seq: buf.readUInt32BE(0),
      timestamp: buf.readBigUInt64BE(tsOffset),
      errorEstimate: buf.readUInt16BE(tsOffset + 8),
      ssid: buf.readUInt16BE(tsOffset + 10),
      tlvs: area.packet.tlvs,
      padding: area.packet.padding,
      authenticated: key !== undefined,
      tlvHmacValid: area.packet.tlvHmacValid,
      size: buf.length,
    },
  };
}

// ---- Session-Reflector test packet ----

/** A Session-Reflector test packet (RFC 8762 §4.3). */
export interface ReflectorPacket {
  /** the reflector's own sequence number */
  seq: number;
  /** T3: when the reflector sent this packet */
  timestamp: bigint;
  errorEstimate: number;
  ssid: number;
  /** T2: when the reflector received the sender's packet */
  receiveTimestamp: bigint;
  senderSeq: number;
  /** T1, copied from the sender's packet */
  senderTimestamp: bigint;
  senderErrorEstimate: number;
  /** TTL / Hop Limit the reflector saw; 0 when it could not read it */
  senderTtl: number;
  tlvs: Tlv[];
  padding: number;
  authenticated: boolean;
  tlvHmacValid: boolean;
  size: number;
}

export type ReflectorPacketInput = Omit<
  ReflectorPacket,
  'authenticated' | 'tlvHmacValid' | 'size' | 'errorEstimate'
> & {
  errorEstimate?: number;
};

interface ReflectorLayout {
  seq: number;
  ts: number;
  ee: number;
  ssid: number;
  rx: number;
  sseq: number;
  sts: number;
  see: number;
  ttl: number;
  base: number;
}

const UNAUTH_REFLECTOR: ReflectorLayout = {
  seq: 0,
  ts: 4,
  ee: 12,
  ssid: 14,
  rx: 16,
  sseq: 24,
  sts: 28,
  see: 36,
  ttl: 40,
  base: UNAUTH_BASE_BYTES,
};
const AUTH_REFLECTOR: ReflectorLayout = {
  seq: 0,
  ts: 16,
  ee: 24,
  ssid: 26,
  rx: 32,
  sseq: 48,
  sts: 64,
  see: 72,
  ttl: 80,
  base: AUTH_BASE_BYTES,
};

/** Encodes a Session-Reflector test packet; authenticated when `key` is given. */
export function encodeReflectorPacket(p: ReflectorPacketInput, key?: Buffer): Buffer {
  const l = key ? AUTH_REFLECTOR : UNAUTH_REFLECTOR;
  const buf = Buffer.alloc(l.base + tlvAreaBytes(p.tlvs, p.padding, key));
  buf.writeUInt32BE(p.seq >>> 0, l.seq);
  buf.writeUInt16BE((p.errorEstimate ?? ERROR_ESTIMATE) & 0xffff, l.ee);
  buf.writeUInt16BE(p.ssid & 0xffff, l.ssid);
  buf.writeBigUInt64BE(BigInt.asUintN(64, p.receiveTimestamp), l.rx);
  buf.writeUInt32BE(p.senderSeq >>> 0, l.sseq);
  buf.writeBigUInt64BE(BigInt.asUintN(64, p.senderTimestamp), l.sts);
  buf.writeUInt16BE(p.senderErrorEstimate & 0xffff, l.see);
  buf.writeUInt8(p.senderTtl & 0xff, l.ttl);
  writeTlvArea(buf, l.base, p.tlvs, p.padding, key);
  restampReflectorPacket(buf, p.timestamp, key);
  return buf;
}

/**
 * Writes the send timestamp T3 into an encoded reflector packet and, when authenticated, the packet
 * HMAC that covers it. The reflector encodes everything else first and calls this right before
 * sending, so T3 is as late as it can be.
 */
export function restampReflectorPacket(buf: Buffer, timestamp: bigint, key?: Buffer): void {
  const l = key ? AUTH_REFLECTOR : UNAUTH_REFLECTOR;
  buf.writeBigUInt64BE(BigInt.asUintN(64, timestamp), l.ts);
  if (key) stampHmac(key, buf.subarray(0, AUTH_HMAC_OFFSET)).copy(buf, AUTH_HMAC_OFFSET);
}

/** Decodes a Session-Reflector test packet; with `key`, only an authenticated packet that verifies. */
export function decodeReflectorPacket(
  buf: Buffer,
  key?: Buffer,
  maxBytes = MAX_PACKET_BYTES,
): Decoded<ReflectorPacket> {
  const l = key ? AUTH_REFLECTOR : UNAUTH_REFLECTOR;
  if (buf.length < l.base)
    return fail(
      'too_short',
      `${buf.length} octets, a ${key ? 'authenticated' : 'unauthenticated'} reflector packet has at least ${l.base}`,
    );
  if (buf.length > maxBytes) return fail('too_long', `${buf.length} octets, at most ${maxBytes} accepted`);
  if (key) {
    const expected = stampHmac(key, buf.subarray(0, AUTH_HMAC_OFFSET));
    if (!hmacEquals(expected, buf.subarray(AUTH_HMAC_OFFSET, AUTH_HMAC_OFFSET + HMAC_BYTES))) {
      return fail('bad_hmac', 'packet HMAC does not verify');
    }
  }
  const area = readTlvArea(buf, l.base, buf.subarray(0, 4), key);
  if (!area.ok) return area;
  return {
    ok: true,
    packet: {
      seq: buf.readUInt32BE(l.seq),
      timestamp: buf.readBigUInt64BE(l.ts),
      errorEstimate: buf.readUInt16BE(l.ee),
      ssid: buf.readUInt16BE(l.ssid),
      receiveTimestamp: buf.readBigUInt64BE(l.rx),
      senderSeq: buf.readUInt32BE(l.sseq),
      senderTimestamp: buf.readBigUInt64BE(l.sts),
      senderErrorEstimate: buf.readUInt16BE(l.see),
      senderTtl: buf.readUInt8(l.ttl),
      tlvs: area.packet.tlvs,
      padding: area.packet.padding,
      authenticated: key !== undefined,
      tlvHmacValid: area.packet.tlvHmacValid,
      size: buf.length,
    },
  };
}

// ---- the site TLV ----

/** The zero-filled site TLV a sender appends (`bytes` of room for the name). */
export function emptySiteTlv(bytes: number): Tlv {
  return { flags: 0, type: TLV_SITE, value: Buffer.alloc(bytes) };
}

/** `site` as UTF-8 in exactly `bytes` octets: cut at a character boundary, zero-padded. */
export function siteValue(site: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  const encoded = Buffer.from(site, 'utf8');
  let n = Math.min(encoded.length, bytes);
  // Back off to the start of a character so a cut never leaves half of one.
  if (n < encoded.length) while (n > 0 && (encoded[n]! & 0xc0) === 0x80) n--;
  encoded.copy(out, 0, 0, n);
  return out;
}

/** The site name in a site TLV value: UTF-8 up to the first zero, control characters removed. */
export function readSiteValue(value: Buffer): string | undefined {
  const end = value.indexOf(0);
  const text = value
    .subarray(0, end === -1 ? value.length : end)
    .toString('utf8')
    .replace(/[\u0000-\u001f\u007f\ufffd]/g, '')
    .trim();
  return text === '' ? undefined : text;
}

// ---- keys ----

/** Shortest HMAC key accepted, in octets. */
export const MIN_KEY_BYTES = 16;

/**
 * Parses a STAMP authentication key: hexadecimal text (at least 32 hex digits, i.e. 16 octets;
 * whitespace and line breaks ignored). `source` names where it came from, for the error.
 */
export function parseStampKey(text: string, source: string): Buffer {
  const hex = text.replace(/\s+/g, '');
  if (hex === '')
    throw keyError(
      `${source}: the key is empty; put at least ${MIN_KEY_BYTES * 2} hex digits in it (e.g. \`openssl rand -hex 32\`)`,
    );
  if (!/^[0-9a-fA-F]+$/.test(hex))
    throw keyError(`${source}: the key must be hexadecimal digits only (e.g. \`openssl rand -hex 32\`)`);
  if (hex.length % 2 !== 0) throw keyError(`${source}: the key has an odd number of hex digits (${hex.length})`);
  const key = Buffer.from(hex, 'hex');
  if (key.length < MIN_KEY_BYTES)
    throw keyError(
      `${source}: the key has ${key.length} octets, at least ${MIN_KEY_BYTES} are needed (e.g. \`openssl rand -hex 32\`)`,
    );
  return key;
}

/** Reads and parses a key file (see parseStampKey). */
export async function readStampKeyFile(path: string): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw keyError(
      `${path}: cannot read the STAMP key file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      err,
    );
  }
  return parseStampKey(text, path);
}

function keyError(message: string, cause?: unknown): AnylatError {
  return new AnylatError('ANYLAT_STAMP_KEY', message, { cause });
}
