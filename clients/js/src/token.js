// Minting the JWTs the hub accepts: HMAC-signed (HS256/384/512) with the Mercure claim
// `{"mercure": {"publish": [...], "subscribe": [...]}}`, whose entries are topic selectors
// (`*`, an exact topic, or a URI template). Signed with WebCrypto, so it runs in Node and in
// a page alike; a secret belongs on a server, so in a page it is for tests and demos.

const HASHES = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

function base64url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

const utf8 = (text) => new TextEncoder().encode(text);

/**
 * A signed token granting `publish` and `subscribe` (lists of topic selectors). `exp`: Unix
 * seconds, a Date, or `{ seconds: n }` from now; omitted leaves the claim out. `payload` goes
 * into `mercure.payload`; `claims` adds registered claims (`iss`, `aud`, `sub`, ...).
 * Resolves the token string.
 */
export async function mintToken(secret, { publish, subscribe, exp, payload, algorithm = 'HS256', claims = {} } = {}) {
  const hash = HASHES[algorithm];
  if (!hash) throw new TypeError(`unsupported algorithm ${algorithm}: use HS256, HS384 or HS512`);
  const key = typeof secret === 'string' ? utf8(secret) : new Uint8Array(secret);
  if (key.length === 0) throw new TypeError('the secret is empty');
  const mercure = {};
  if (publish != null) mercure.publish = Array.from(publish);
  if (subscribe != null) mercure.subscribe = Array.from(subscribe);
  if (payload !== undefined) mercure.payload = payload;
  const body = { ...claims, mercure };
  if (exp instanceof Date) body.exp = Math.floor(exp.getTime() / 1000);
  else if (exp && typeof exp === 'object') body.exp = Math.floor(Date.now() / 1000 + exp.seconds);
  else if (exp != null) body.exp = Math.floor(exp);
  const input = `${base64url(utf8(JSON.stringify({ alg: algorithm, typ: 'JWT' })))}.${base64url(utf8(JSON.stringify(body)))}`;
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) throw new TypeError('WebCrypto is not available here (a page needs a secure context)');
  const cryptoKey = await subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
  const signature = new Uint8Array(await subtle.sign('HMAC', cryptoKey, utf8(input)));
  return `${input}.${base64url(signature)}`;
}
