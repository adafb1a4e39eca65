// The DNS messages anylat sends and answers: a site query (CHAOS TXT `hostname.bind`/`id.server`,
// or any name), with EDNS asking for the server's NSID (RFC 5001, option 3), and the reflector's
// answer to it. Encoding and decoding are dns-packet's (small, kept up, the codec under
// multicast-dns and bonjour; it encodes EDNS options and the CHAOS class); what is ours is which
// messages are built and the limits an answer obeys.
//
// The reflector's limits, because it faces the internet:
// - it answers only the two CHAOS site names (TXT); everything else is REFUSED, with no recursion;
// - over UDP an answer is never larger than the query that asked for it, nor than the size the
//   query allows (512 bytes without EDNS, its EDNS payload size otherwise): a larger one goes out
//   truncated (TC, question only) and the client asks again over TCP. anylat's own query pads
//   itself (EDNS Padding, RFC 7830) to PADDED_QUERY_BYTES so its answer fits;
// - a query that is not a plain one-question query gets a header-only error, never more bytes.
import dnsPacket from 'dns-packet';

/** The CHAOS TXT names a DNS server answers with its own identity (RFC 4892). */
export const SITE_QNAMES = ['hostname.bind', 'id.server'] as const;

/** EDNS option code of the name server identifier (RFC 5001). */
export const NSID_OPTION = 3;
/** EDNS option code of padding (RFC 7830). */
export const PADDING_OPTION = 12;

/** anylat pads its EDNS queries to this size (a multiple of RFC 8467's 128-byte block) so an answer with the longest site in TXT and NSID (198 bytes) fits under it. */
export const PADDED_QUERY_BYTES = 256;

/** The classic limit of a DNS message over UDP without EDNS (RFC 1035). */
export const PLAIN_UDP_BYTES = 512;
/** The largest UDP answer the reflector sends whatever a query advertises (DNS flag day 2020). */
export const MAX_EDNS_UDP_BYTES = 1232;
/** The EDNS payload size anylat's query advertises. */
export const QUERY_EDNS_UDP_BYTES = 1232;

/** Longest site name an answer carries (one TXT string, one NSID): longer names are cut. */
export const MAX_SITE_BYTES = 63;

/** Record types a query may ask for (the CHAOS site names always ask for TXT). */
export const QUERY_TYPES = ['A', 'AAAA', 'TXT', 'SOA', 'NS'] as const;
export type QueryType = (typeof QUERY_TYPES)[number];

const RCODE_FORMERR = 1;
const RCODE_NOTIMP = 4;
const RCODE_REFUSED = 5;
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;

/** What one site query asks. */
export interface SiteQuery {
  id: number;
  /** a site name (CHAOS TXT) or any DNS name (class IN) */
  qname: string;
  /** the record type; TXT for the site names */
  qtype: QueryType;
  /** send EDNS with an NSID request (and padding); false sends a plain query */
  nsid: boolean;
}

/** True for `hostname.bind` / `id.server` (any case, trailing dot allowed). */
export function isSiteName(qname: string): boolean {
  const n = qname.toLowerCase().replace(/\.$/, '');
  return (SITE_QNAMES as readonly string[]).includes(n);
}

/** Encodes a query for `q` (without the TCP length prefix). */
export function encodeSiteQuery(q: SiteQuery): Buffer {
  const chaos = isSiteName(q.qname);
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: q.id,
    flags: 0,
    questions: [{ name: q.qname.replace(/\.$/, ''), type: chaos ? 'TXT' : q.qtype, class: chaos ? 'CH' : 'IN' }],
  };
  if (!q.nsid) return dnsPacket.encode(packet);
  const options: Array<{ code: number; data: Buffer }> = [{ code: NSID_OPTION, data: Buffer.alloc(0) }];
  const opt = {
    type: 'OPT',
    name: '.',
    udpPayloadSize: QUERY_EDNS_UDP_BYTES,
    flags: 0,
    options,
  } as unknown as dnsPacket.Answer;
  packet.additionals = [opt];
  const bare = dnsPacket.encodingLength(packet);
  // A padding option costs 4 bytes of header besides its own length.
  const pad = PADDED_QUERY_BYTES - bare - 4;
  if (pad >= 0) options.push({ code: PADDING_OPTION, data: Buffer.alloc(pad) });
  return dnsPacket.encode(packet);
}

/** A decoded answer to a site query. */
export type SiteAnswer =
  | { ok: true; rcode: string; truncated: boolean; site?: string; siteFrom?: 'nsid' | 'txt' }
  /** not an answer to this query: wrong id or question, not a response, undecodable */
  | { ok: false; why: string };

/** Text of a site carried as bytes: printable ASCII as is, anything else in hex. */
export function siteText(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return undefined;
  const cut = bytes.subarray(0, MAX_SITE_BYTES);
  return /^[\x21-\x7e]+$/.test(cut.toString('latin1')) ? cut.toString('latin1') : cut.toString('hex');
}

interface OptRecord {
  type: 'OPT';
  udpPayloadSize: number;
  ednsVersion: number;
  options: Array<{ code: number; data?: Buffer }>;
}

function optOf(p: dnsPacket.DecodedPacket): OptRecord | undefined {
  return (p.additionals ?? []).find((a) => a.type === 'OPT') as unknown as OptRecord | undefined;
}

function decode(buf: Buffer): dnsPacket.DecodedPacket | undefined {
  try {
    return dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
}

/** Decodes `buf` as the answer to `q`; the site comes from NSID first, then from the TXT answer. */
export function decodeSiteAnswer(buf: Buffer, q: SiteQuery): SiteAnswer {
  if (buf.length < 12) return { ok: false, why: `${buf.length} bytes, shorter than a DNS header` };
  if (buf.readUInt16BE(0) !== q.id) return { ok: false, why: 'another query id' };
  const p = decode(buf);
  if (!p) return { ok: false, why: 'not a DNS message' };
  if (p.type !== 'response') return { ok: false, why: 'a query, not a response' };
  const question = p.questions?.[0];
  const rcode = (p as { rcode?: string }).rcode ?? 'NOERROR';
  const truncated = p.flag_tc === true;
  // A header-only error (FORMERR) carries no question; any other answer must echo ours.
  if (question && question.name.toLowerCase() !== q.qname.toLowerCase().replace(/\.$/, ''))
    return { ok: false, why: `answers "${question.name}"` };
  const answer: SiteAnswer = { ok: true, rcode, truncated };
  const nsid = optOf(p)?.options.find((o) => o.code === NSID_OPTION)?.data;
  const fromNsid = nsid ? siteText(nsid) : undefined;
  if (fromNsid !== undefined) return { ...answer, site: fromNsid, siteFrom: 'nsid' };
  if (rcode === 'NOERROR' && isSiteName(q.qname)) {
    for (const a of p.answers ?? []) {
      if (a.type !== 'TXT') continue;
      const parts = (Array.isArray(a.data) ? a.data : [a.data]).map((d) =>
        typeof d === 'string' ? Buffer.from(d) : d,
      );
      const site = siteText(Buffer.concat(parts));
      if (site !== undefined) return { ...answer, site, siteFrom: 'txt' };
    }
  }
  return answer;
}

// ---- the reflector's side ----

/** How a query was treated, for the reflector's counters. */
export type QueryVerdict = 'answered' | 'refused' | 'truncated' | 'formerr' | 'notimp' | 'dropped';

/** Header-only error answer: 12 bytes, never more than any query that reached it. */
function headerOnly(query: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(query.readUInt16BE(0), 0);
  const opcode = query.readUInt16BE(2) & 0x7800;
  out.writeUInt16BE(FLAG_QR | opcode | (query.readUInt16BE(2) & FLAG_RD) | rcode, 2);
  return out;
}

/** A plain query (one question, at most an OPT record), or the header-only answer (or silence) it gets instead. */
function screenQuery(query: Buffer):
  | {
      p: NonNullable<ReturnType<typeof decode>>;
      question: dnsPacket.Question;
      opt: ReturnType<typeof optOf>;
      flags: number;
    }
  | { reply: Buffer; verdict: QueryVerdict }
  | undefined {
  if (query.length < 12) return undefined;
  const flags = query.readUInt16BE(2);
  // Never answer a response: two reflectors must not be able to bounce packets between them.
  if ((flags & FLAG_QR) !== 0) return undefined;
  if (((flags >> 11) & 0xf) !== 0) return { reply: headerOnly(query, RCODE_NOTIMP), verdict: 'notimp' };
  // One question, no answer or authority, at most the OPT record: a plain query. Checked on the
  // header before any decoding, so a query claiming thousands of records costs nothing.
  const [qd, an, ns, ar] = [
    query.readUInt16BE(4),
    query.readUInt16BE(6),
    query.readUInt16BE(8),
    query.readUInt16BE(10),
  ];
  if (qd !== 1 || an !== 0 || ns !== 0 || ar > 1)
    return { reply: headerOnly(query, RCODE_FORMERR), verdict: 'formerr' };
  const p = decode(query);
  const question = p?.questions?.[0];
  if (!p || !question) return { reply: headerOnly(query, RCODE_FORMERR), verdict: 'formerr' };
  const opt = optOf(p);
  if (p.additionals && p.additionals.length > 0 && !opt)
    return { reply: headerOnly(query, RCODE_FORMERR), verdict: 'formerr' };
  return { p, question, opt, flags };
}

/**
 * The reflector's answer to one query, or undefined to drop it (a response, or shorter than a
 * header). `transport` decides the size limit: over UDP the answer never exceeds the query's own
 * size nor what the query allows; over TCP only the 64 KiB frame bounds it.
 */
export function answerQuery(
  query: Buffer,
  site: string,
  transport: 'udp' | 'tcp',
): { reply: Buffer; verdict: QueryVerdict } | undefined {
  const screened = screenQuery(query);
  if (!screened || 'reply' in screened) return screened;
  const { p, question, opt, flags } = screened;
  const siteBytes = Buffer.from(site, 'utf8').subarray(0, MAX_SITE_BYTES);
  const chaosSite =
    question.class === 'CH' &&
    (question.type === 'TXT' || (question.type as string) === 'ANY') &&
    isSiteName(question.name);
  let rcode = chaosSite ? 0 : RCODE_REFUSED;
  let extendedRcode = 0;
  const answerOptions: Array<{ code: number; data: Buffer }> = [];
  if (opt && opt.ednsVersion !== 0) {
    // BADVERS (16): the upper 8 bits go in the OPT record, the lower 4 in the header.
    rcode = 0;
    extendedRcode = 1;
  } else if (opt?.options.some((o) => o.code === NSID_OPTION)) {
    answerOptions.push({ code: NSID_OPTION, data: siteBytes });
  }
  const answers: dnsPacket.Answer[] =
    rcode === 0 && extendedRcode === 0 && chaosSite
      ? [{ type: 'TXT', class: 'CH', name: question.name, ttl: 0, data: [siteBytes] } as dnsPacket.Answer]
      : [];
  const responseOpt = opt
    ? ({
        type: 'OPT',
        name: '.',
        udpPayloadSize: MAX_EDNS_UDP_BYTES,
        extendedRcode,
        flags: 0,
        options: answerOptions,
      } as unknown as dnsPacket.Answer)
    : undefined;
  const header = FLAG_QR | (chaosSite ? FLAG_AA : 0) | (flags & FLAG_RD) | rcode;
  const build = (tc: boolean, withAnswers: boolean) =>
    dnsPacket.encode({
      type: 'response',
      id: p.id ?? 0,
      flags: (header & 0x7fff) | (tc ? FLAG_TC : 0),
      questions: [question],
      answers: withAnswers ? answers : [],
      ...(responseOpt
        ? { additionals: [tc ? ({ ...responseOpt, options: [] } as dnsPacket.Answer) : responseOpt] }
        : {}),
    });
  let reply = build(false, true);
  const verdict: QueryVerdict = extendedRcode !== 0 ? 'formerr' : chaosSite ? 'answered' : 'refused';
  if (transport === 'tcp') return { reply, verdict };
  const allowed = opt ? Math.max(PLAIN_UDP_BYTES, Math.min(opt.udpPayloadSize, MAX_EDNS_UDP_BYTES)) : PLAIN_UDP_BYTES;
  const limit = Math.min(allowed, query.length);
  if (reply.length <= limit) return { reply, verdict };
  reply = build(true, false);
  if (reply.length <= limit) return { reply, verdict: 'truncated' };
  // Question echoed without OPT is at most the query's own question: fits unless the name was compressed oddly.
  const bare = headerOnly(query, rcode);
  bare.writeUInt16BE(bare.readUInt16BE(2) | FLAG_TC, 2);
  return { reply: bare, verdict: 'truncated' };
}

/** Frames a message for DNS over TCP (RFC 1035 4.2.2: two-byte length first). */
export function frameTcp(message: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(message.length, 0);
  return Buffer.concat([len, message]);
}

/** Splits DNS-over-TCP frames off a stream, keeping what is left of an incomplete one. */
export class TcpFramer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageBytes = 65_535) {}

  /** Appends data and returns whole messages; throws when a frame announces more than the limit. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 2) {
      const len = this.pending.readUInt16BE(0);
      if (len > this.maxMessageBytes)
        throw new Error(`a DNS message of ${len} bytes, more than the ${this.maxMessageBytes} accepted`);
      if (this.pending.length < 2 + len) break;
      out.push(this.pending.subarray(2, 2 + len));
      this.pending = this.pending.subarray(2 + len);
    }
    return out;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.pending.length;
  }
}
