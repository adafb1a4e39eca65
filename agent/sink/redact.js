// Keeps credentials out of log lines and error messages: the token itself, `Token …`/`Bearer …`
// authorization values, user:password in URLs and token-like query parameters.
const REDACTED = '<redacted>';
/** `text` with every trace of `secret` and of URL/header credentials replaced by `<redacted>`. */
export function redact(text, secret) {
    let out = text;
    if (secret !== undefined && secret.length > 0)
        out = out.split(secret).join(REDACTED);
    return out
        .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, `$1${REDACTED}@`)
        .replace(/([?&](?:token|password|p|u|authorization)=)[^&\s#]*/gi, `$1${REDACTED}`)
        .replace(/\b(Token|Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+/g, `$1 ${REDACTED}`);
}
/** The URL to show in messages: scheme, host, port and path, no credentials, no query. */
export function displayUrl(url) {
    try {
        const u = new URL(url);
        return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    }
    catch {
        return redact(url);
    }
}
