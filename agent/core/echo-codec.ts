// The TCP echo frames spoken between the tcp probe and the reflector's TCP echo part.
//
// Request (sender -> reflector), `length` bytes, 64 by default:
//   0  4  magic "ANYL"
//   4  1  version (1)
//   5  1  type (1 = request)
//   6  2  length of the whole frame, big-endian, ECHO_MIN_REQUEST..ECHO_MAX_REQUEST
//   8  8  nonce chosen by the sender
//  16  1  flags: bit 0 asks for the reflector's turnaround (a type 3 reply); zero otherwise
//  17  .. zero padding: the room the reflector may use for its reply
//
// Reply (reflector -> sender), never longer than the request it answers:
//   0  4  magic "ANYL"
//   4  1  version (1)
//   5  1  type (2 = reply)
//   6  2  length of the whole frame (17 + site bytes)
//   8  8  the request's nonce
//  16  1  site length in bytes
//  17  n  site, UTF-8, truncated on a character boundary to fit the request's length
//
// Reply with turnaround (type 3), only to a request that set flag bit 0:
//   0 16  as type 2, type 3, length 21 + site bytes
//  16  4  turnaround: microseconds from the request's arrival (the reflector's kernel) to the
//         reply's write, big-endian; 0xFFFFFFFF when the reflector could not tell
//  20  1  site length in bytes
//  21  n  site
//
// Request and reply differ in `type`, so a plain byte-mirroring echo server is not mistaken for a
// reflector. The sender sizes the request, so the reply can never amplify what a spoofer sends.
// The flags byte was zero padding before: a reflector that predates it ignores it and answers
// type 2, and a sender that does not set it never sees type 3, so either side may be older.

export const ECHO_MAGIC = Buffer.from('ANYL', 'ascii');
export const ECHO_VERSION = 1;
export const ECHO_TYPE_REQUEST = 1;
export const ECHO_TYPE_REPLY = 2;
export const ECHO_TYPE_REPLY_TURNAROUND = 3;
/** request flag: answer with a type 3 reply carrying the reflector's turnaround */
export const ECHO_FLAG_TURNAROUND = 0x01;
/** the turnaround field's value for "could not tell" */
export const ECHO_TURNAROUND_UNKNOWN = 0xffff_ffff;
/** bytes before the padding (request) or the site (reply) */
export const ECHO_HEADER_SIZE = 16;
/** header + the site length byte: the smallest reply, so the smallest request worth answering */
export const ECHO_REPLY_MIN = ECHO_HEADER_SIZE + 1;
/** header + turnaround + the site length byte: the smallest type 3 reply */
export const ECHO_REPLY_TURNAROUND_MIN = ECHO_HEADER_SIZE + 5;
export const ECHO_MIN_REQUEST = 32;
export const ECHO_MAX_REQUEST = 1024;
/** what the tcp probe sends: room for a 47-byte site name */
export const ECHO_REQUEST_SIZE = 64;
export const ECHO_NONCE_SIZE = 8;

/** Result of looking at the start of a byte stream for one frame. */
export type FrameParse<T> =
  { kind: 'need'; bytes: number } | ({ kind: 'frame'; length: number } & T) | { kind: 'invalid'; why: string };

/** Builds a request frame of `size` bytes carrying `nonce` (8 bytes) and `flags` (ECHO_FLAG_*). */
export function encodeEchoRequest(nonce: Buffer, size: number = ECHO_REQUEST_SIZE, flags = 0): Buffer {
  if (nonce.length !== ECHO_NONCE_SIZE)
    throw new RangeError(`echo nonce must be ${ECHO_NONCE_SIZE} bytes, got ${nonce.length}`);
  if (!Number.isInteger(size) || size < ECHO_MIN_REQUEST || size > ECHO_MAX_REQUEST) {
    throw new RangeError(`echo request size must be ${ECHO_MIN_REQUEST}..${ECHO_MAX_REQUEST} bytes, got ${size}`);
  }
  const frame = Buffer.alloc(size);
  ECHO_MAGIC.copy(frame, 0);
  frame[4] = ECHO_VERSION;
  frame[5] = ECHO_TYPE_REQUEST;
  frame.writeUInt16BE(size, 6);
  nonce.copy(frame, 8);
  frame[ECHO_HEADER_SIZE] = flags;
  return frame;
}

// Magic, version, type and length, shared by both directions. Needs only as many bytes as have
// arrived, so garbage is rejected on its first byte instead of after a full frame's wait.
function parseHeader(buf: Buffer, types: readonly number[], min: number, max: number): FrameParse<object> {
  const have = Math.min(buf.length, 4);
  if (buf.compare(ECHO_MAGIC, 0, have, 0, have) !== 0) return { kind: 'invalid', why: 'bad magic' };
  if (buf.length < 8) return { kind: 'need', bytes: 8 - buf.length };
  if (buf[4] !== ECHO_VERSION) return { kind: 'invalid', why: `unsupported version ${buf[4]}` };
  if (!types.includes(buf[5]!)) return { kind: 'invalid', why: `unexpected frame type ${buf[5]}` };
  const length = buf.readUInt16BE(6);
  if (length < min || length > max) return { kind: 'invalid', why: `frame length ${length} outside ${min}..${max}` };
  if (buf.length < length) return { kind: 'need', bytes: length - buf.length };
  return { kind: 'frame', length };
}

/** Reads one request from the start of `buf` (which may hold more than one frame). */
export function parseEchoRequest(buf: Buffer): FrameParse<{ nonce: Buffer; flags: number }> {
  const head = parseHeader(buf, [ECHO_TYPE_REQUEST], ECHO_MIN_REQUEST, ECHO_MAX_REQUEST);
  if (head.kind !== 'frame') return head;
  return { kind: 'frame', length: head.length, nonce: Buffer.from(buf.subarray(8, 16)), flags: buf[ECHO_HEADER_SIZE]! };
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`, never splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return bytes;
  let end = Math.max(0, maxBytes);
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character's first byte.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * Builds the reply to a request of `requestLength` bytes: never longer than the request. With
 * `turnaround` (the request set ECHO_FLAG_TURNAROUND) it is a type 3 reply whose turnaround field
 * holds ECHO_TURNAROUND_UNKNOWN until setEchoTurnaround fills it, right before the write.
 */
export function encodeEchoReply(nonce: Buffer, site: string, requestLength: number, turnaround = false): Buffer {
  if (nonce.length !== ECHO_NONCE_SIZE)
    throw new RangeError(`echo nonce must be ${ECHO_NONCE_SIZE} bytes, got ${nonce.length}`);
  const min = turnaround ? ECHO_REPLY_TURNAROUND_MIN : ECHO_REPLY_MIN;
  const room = Math.min(255, requestLength - min);
  if (room < 0) throw new RangeError(`echo request of ${requestLength} bytes has no room for a reply`);
  const siteBytes = truncateUtf8(site, room);
  const frame = Buffer.alloc(min + siteBytes.length);
  ECHO_MAGIC.copy(frame, 0);
  frame[4] = ECHO_VERSION;
  frame[5] = turnaround ? ECHO_TYPE_REPLY_TURNAROUND : ECHO_TYPE_REPLY;
  frame.writeUInt16BE(frame.length, 6);
  nonce.copy(frame, 8);
  if (turnaround) frame.writeUInt32BE(ECHO_TURNAROUND_UNKNOWN, ECHO_HEADER_SIZE);
  frame[min - 1] = siteBytes.length;
  siteBytes.copy(frame, min);
  return frame;
}

/** Writes the turnaround (microseconds, rounded, capped below "unknown") into a type 3 reply. */
export function setEchoTurnaround(reply: Buffer, us: number): void {
  if (reply[5] !== ECHO_TYPE_REPLY_TURNAROUND) throw new RangeError('only a type 3 echo reply carries a turnaround');
  reply.writeUInt32BE(Math.min(ECHO_TURNAROUND_UNKNOWN - 1, Math.max(0, Math.round(us))), ECHO_HEADER_SIZE);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one reply from the start of `buf`. `maxLength` is the size of the request it answers: a
 * longer reply is invalid, whatever it says. `turnaround` is what a type 3 reply carries:
 * microseconds, or null when the reflector could not tell; undefined for a type 2 reply.
 */
export function parseEchoReply(
  buf: Buffer,
  maxLength: number,
): FrameParse<{ nonce: Buffer; site: string; turnaround?: number | null }> {
  const head = parseHeader(buf, [ECHO_TYPE_REPLY, ECHO_TYPE_REPLY_TURNAROUND], ECHO_REPLY_MIN, maxLength);
  if (head.kind !== 'frame') return head;
  const withTurnaround = buf[5] === ECHO_TYPE_REPLY_TURNAROUND;
  const min = withTurnaround ? ECHO_REPLY_TURNAROUND_MIN : ECHO_REPLY_MIN;
  if (head.length < min) return { kind: 'invalid', why: `frame length ${head.length} below ${min}` };
  const siteLength = buf[min - 1]!;
  if (min + siteLength !== head.length) {
    return { kind: 'invalid', why: `site length ${siteLength} does not match frame length ${head.length}` };
  }
  let site: string;
  try {
    site = STRICT_UTF8.decode(buf.subarray(min, head.length));
  } catch {
    return { kind: 'invalid', why: 'site is not valid UTF-8' };
  }
  const frame = { kind: 'frame' as const, length: head.length, nonce: Buffer.from(buf.subarray(8, 16)), site };
  if (!withTurnaround) return frame;
  const us = buf.readUInt32BE(ECHO_HEADER_SIZE);
  return { ...frame, turnaround: us === ECHO_TURNAROUND_UNKNOWN ? null : us };
}
