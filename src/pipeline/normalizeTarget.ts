/**
 * Canonicalises the raw HTTP request-target (Node's `req.url`: raw bytes as a latin1 string).
 *
 * The gateway authorizes against the returned path and forwards exactly that path upstream, so
 * there must be one spelling per resource: anything ambiguous is rejected, never "repaired".
 * Order: length, then request-target form, then one left-to-right pass in which the first
 * violation found wins (so `/a;b#c` is PATH_PARAMETER). No regular expressions.
 */

export type NormalizeRejectReason =
  | "ABSOLUTE_FORM"
  | "ASTERISK_FORM"
  | "NOT_ORIGIN_FORM"
  | "FRAGMENT"
  | "CONTROL_CHARACTER"
  | "NON_ASCII"
  | "INVALID_PERCENT_ENCODING"
  | "ENCODED_SEPARATOR"
  | "BACKSLASH"
  | "DOT_SEGMENT"
  | "PATH_PARAMETER"
  | "DOUBLE_ENCODING"
  | "INVALID_UTF8"
  | "TOO_LONG";

export type NormalizeResult =
  | { ok: true; path: string; query: string } // query is "" or starts with "?"
  | { ok: false; reason: NormalizeRejectReason; detail: string }; // detail never echoes input

export interface NormalizeOptions {
  caseInsensitive?: boolean;
  maxLength?: number; // default 8192
}

type Rejection = Extract<NormalizeResult, { ok: false }>;

const DEFAULT_MAX_LENGTH = 8192;
const HEX = "0123456789ABCDEF";
const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;

// Fatal mode makes overlong forms (%C0%AE), surrogates and truncated sequences throw instead of
// silently becoming U+FFFD, which an upstream might map back to something dangerous.
const utf8 = new TextDecoder("utf-8", { fatal: true });

function reject(reason: NormalizeRejectReason, detail: string): Rejection {
  return { ok: false, reason, detail };
}

// Offending bytes are reported as hex codes, never echoed, so details are log-safe.
function byteName(c: number): string {
  return "0x" + c.toString(16).toUpperCase().padStart(2, "0");
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20; // ASCII fold: 'A'..'F' -> 'a'..'f'
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

function isAlpha(c: number): boolean {
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x7a;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

// RFC 3986 unreserved: these mean the same encoded or not, so only the decoded spelling survives.
function isUnreserved(c: number): boolean {
  return isAlpha(c) || isDigit(c) || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
}

// Raw bytes outside visible ASCII are classified the same way in path and query.
function badRawByte(c: number, at: number): Rejection | null {
  // Space/TAB/CR/LF/NUL/DEL enable request splitting and log injection; nothing legitimate sends them raw.
  if (c <= 0x20 || c === 0x7f) return reject("CONTROL_CHARACTER", `control byte ${byteName(c)} at offset ${at}`);
  // Raw high bytes are decoded differently by different stacks (latin1 vs UTF-8): require %-encoding.
  if (c >= 0x80) return reject("NON_ASCII", `non-ASCII byte ${byteName(c)} at offset ${at}`);
  // Clients never send fragments; a '#' here means a confused or malicious client.
  if (c === HASH) return reject("FRAGMENT", `fragment '#' at offset ${at}`);
  return null;
}

// Absolute-form is `scheme "://" ...` with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
function hasSchemePrefix(t: string): boolean {
  if (!isAlpha(t.charCodeAt(0))) return false;
  let i = 1;
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (!(isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === DOT)) break;
  }
  return t.startsWith("://", i);
}

// Only origin-form is routable: absolute-form would let the client pick the authority (proxy abuse).
function classifyNonOrigin(t: string): Rejection {
  if (t === "*") return reject("ASTERISK_FORM", "asterisk-form (OPTIONS *) is not routable");
  if (hasSchemePrefix(t)) return reject("ABSOLUTE_FORM", "absolute-form request-target is not accepted");
  return reject("NOT_ORIGIN_FORM", "request-target must start with '/'");
}

// The query is not used for routing, so it is kept verbatim, but it is forwarded: it must be clean.
function checkQuery(t: string, from: number): Rejection | null {
  for (let i = from; i < t.length; i++) {
    const c = t.charCodeAt(i);
    const bad = badRawByte(c, i);
    if (bad) return bad;
    if (c === PERCENT && (hexValue(t.charCodeAt(i + 1)) < 0 || hexValue(t.charCodeAt(i + 2)) < 0)) {
      return reject("INVALID_PERCENT_ENCODING", `'%' not followed by two hex digits at offset ${i} (query)`);
    }
  }
  return null;
}

/** Visible ASCII outside RFC 3986 pchar and "/": never sent raw upstream. */
const NOT_PCHAR = new Set([..."\"<>^`{|}[]"].map((ch) => ch.charCodeAt(0)));

export function normalizeTarget(rawTarget: string, options: NormalizeOptions = {}): NormalizeResult {
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  const lower = options.caseInsensitive === true;
  const n = rawTarget.length;

  // Bound the work per request before looking at any byte.
  if (n > maxLength) return reject("TOO_LONG", `request-target is ${n} bytes, limit is ${maxLength}`);
  if (rawTarget.charCodeAt(0) !== SLASH) return classifyNonOrigin(rawTarget);

  let out = "";
  let copyFrom = 0; // raw chars [copyFrom, i) are unchanged and not yet appended to `out`
  let prevSlash = false; // last output unit was '/', so another '/' would make an empty segment
  let segUnits = 0; // output units (chars or kept %XX triplets) in the current segment
  let segDots = 0; // how many of those units are '.'
  let afterPct25 = 0; // 1 = just kept "%25", 2 = "%25" + one hex digit; a further hex digit is double encoding
  const highBytes: number[] = []; // current run of consecutive encoded bytes >= 0x80

  const flush = (to: number): void => {
    if (to > copyFrom) {
      const run = rawTarget.slice(copyFrom, to);
      // Runs never contain %XX triplets (those are emitted separately), so this cannot lower hex digits.
      out += lower ? run.toLowerCase() : run;
    }
  };

  // A run of encoded high bytes ends at any other unit. ASCII is never part of a multi-byte
  // sequence, so the segment's bytes are valid UTF-8 iff every such run is.
  const closeUtf8Run = (at: number): Rejection | null => {
    if (highBytes.length === 0) return null;
    try {
      utf8.decode(Uint8Array.from(highBytes));
    } catch {
      return reject("INVALID_UTF8", `percent-encoded bytes before offset ${at} are not valid UTF-8`);
    } finally {
      highBytes.length = 0;
    }
    return null;
  };

  // A literal (raw or decoded) character joins the segment.
  const charUnit = (c: number, at: number): Rejection | null => {
    const bad = closeUtf8Run(at);
    if (bad) return bad;
    segUnits++;
    if (c === DOT) segDots++;
    if (afterPct25 !== 0) {
      if (hexValue(c) < 0) afterPct25 = 0;
      // "%25" + two hex digits decodes to another %XX: a second decode by any upstream changes meaning.
      else if (afterPct25 === 2) return reject("DOUBLE_ENCODING", `double percent-encoding ending at offset ${at}`);
      else afterPct25 = 2;
    }
    prevSlash = false;
    return null;
  };

  const endSegment = (at: number): Rejection | null => {
    const bad = closeUtf8Run(at);
    if (bad) return bad;
    // Reject rather than resolve: no legitimate client sends dot segments, and resolving them is how
    // `/public/../admin` gets authorized as one path and served as another.
    if (segUnits > 0 && segUnits <= 2 && segDots === segUnits) {
      return reject("DOT_SEGMENT", `dot segment ending at offset ${at}`);
    }
    // `..a` and `a..` are legal names, but forwarding clients and many servers treat "/.." and
    // "../" substrings as traversal: refuse them here rather than after authorization.
    const segment = out.slice(out.lastIndexOf("/") + 1);
    if (segment.startsWith("..") || segment.endsWith("..")) {
      return reject("DOT_SEGMENT", `segment starting or ending with ".." before offset ${at}`);
    }
    segUnits = 0;
    segDots = 0;
    afterPct25 = 0;
    return null;
  };

  let i = 0;
  for (; i < n; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c === QUESTION) break; // the first '?' ends the path (RFC 3986)

    if (c === SLASH) {
      // Bring `out` up to date so endSegment can see the whole segment.
      flush(i);
      copyFrom = i;
      const bad = endSegment(i);
      if (bad) return bad;
      // Collapse empty segments: many servers treat `//admin` as `/admin`, so they must match the same policy.
      if (prevSlash) {
        flush(i);
        copyFrom = i + 1;
      }
      prevSlash = true;
      continue;
    }

    if (c === PERCENT) {
      const hi = hexValue(rawTarget.charCodeAt(i + 1));
      const lo = hexValue(rawTarget.charCodeAt(i + 2));
      // A stray '%' is decoded inconsistently (kept, dropped, or 400) across stacks.
      if (hi < 0 || lo < 0) return reject("INVALID_PERCENT_ENCODING", `'%' not followed by two hex digits at offset ${i}`);
      const v = hi * 16 + lo;
      // %2F/%5C are decoded into separators by some upstreams, turning one segment into two.
      if (v === SLASH || v === BACKSLASH) return reject("ENCODED_SEPARATOR", `encoded separator %${HEX[hi]}${HEX[lo]} at offset ${i}`);
      // Encoded controls (%00 truncation, %0D%0A splitting) have no place in a path.
      if (v < 0x20 || v === 0x7f) return reject("CONTROL_CHARACTER", `encoded control byte ${byteName(v)} at offset ${i}`);
      flush(i);
      copyFrom = i + 3;
      if (isUnreserved(v)) {
        // Decode unreserved so `%41dmin` and `Admin` are one path (and `%2e` is seen as a dot).
        const ch = String.fromCharCode(v);
        out += lower ? ch.toLowerCase() : ch;
        const bad = charUnit(v, i);
        if (bad) return bad;
      } else {
        // Everything else stays encoded, in uppercase hex, so there is exactly one spelling.
        if (v >= 0x80) highBytes.push(v);
        else {
          const bad = closeUtf8Run(i);
          if (bad) return bad;
        }
        out += "%" + HEX[hi] + HEX[lo];
        segUnits++;
        afterPct25 = v === PERCENT ? 1 : 0;
        prevSlash = false;
      }
      i += 2;
      continue;
    }

    const bad = badRawByte(c, i);
    if (bad) return bad;
    // Backslash is a separator to IIS, Windows back-ends and some proxies, but not to us.
    if (c === BACKSLASH) return reject("BACKSLASH", `backslash at offset ${i}`);
    // Matrix parameters (`/admin;x=1`) are stripped by Tomcat/Spring before routing: a classic bypass.
    if (c === SEMICOLON) return reject("PATH_PARAMETER", `';' in path at offset ${i}`);
    if (NOT_PCHAR.has(c)) {
      // The forwarding client (WHATWG URL) would percent-encode these; encode them here so the
      // spelling the policy evaluated is exactly the one the upstream receives.
      const bad = closeUtf8Run(i);
      if (bad) return bad;
      flush(i);
      copyFrom = i + 1;
      out += "%" + HEX[c >> 4] + HEX[c & 15];
      segUnits++;
      afterPct25 = 0;
      prevSlash = false;
      continue;
    }
    const unit = charUnit(c, i);
    if (unit) return unit;
  }

  flush(i);
  const last = endSegment(i);
  if (last) return last;

  if (i >= n) return { ok: true, path: out, query: "" };
  const queryError = checkQuery(rawTarget, i + 1);
  if (queryError) return queryError;
  // A bare trailing '?' carries no data, so `/a?` and `/a` are the same request.
  return { ok: true, path: out, query: i + 1 === n ? "" : rawTarget.slice(i) };
}
