// DPoP proofs (RFC 9449) made with `jose`, a JOSE library tower-jwt-auth does
// not use, for the integration tests (tests/support/dpop.rs runs it).
//
//   node tests/oidc/dpop-proof.mjs '{"keys": {...}, "proofs": [...]}'
//
// Input, one JSON argument:
//   keys    {name: "ES256" | "RS256" | "PS256" | "EdDSA" | private JWK}: a
//           string makes a new key pair for that algorithm
//   proofs  [{key, htm, htu, ...}], each with, all optional but key:
//             alg           the header's alg (default: the key's)
//             typ           the header's typ (default "dpop+jwt")
//             iat           Unix seconds (default now)
//             jti           (default random)
//             accessToken   sets ath = base64url(SHA-256(accessToken))
//             ath           sets ath as given
//             nonce         the server's nonce
//             privateJwk    true: the header's jwk is the private key
//             unsecured     true: alg "none", no signature
//             hmacSecret    a secret: an HS256 proof, with the key's public jwk
//             omit          claim names to leave out
//
// Output, one JSON line: {"keys": {name: private JWK}, "public": {name:
// public JWK}, "thumbprints": {name: RFC 7638 thumbprint}, "proofs": [...]}.

import * as crypto from 'node:crypto';
import * as jose from 'jose';

const input = JSON.parse(process.argv[2] ?? '{}');

const keys = {};
const pub = {};
const thumbprints = {};
for (const [name, spec] of Object.entries(input.keys ?? {})) {
  let privateJwk;
  if (typeof spec === 'string') {
    const { privateKey } = await jose.generateKeyPair(spec, { extractable: true, modulusLength: 2048 });
    privateJwk = { ...(await jose.exportJWK(privateKey)), alg: spec };
  } else {
    privateJwk = spec;
  }
  const { d, p, q, dp, dq, qi, ...publicJwk } = privateJwk;
  keys[name] = privateJwk;
  pub[name] = publicJwk;
  thumbprints[name] = await jose.calculateJwkThumbprint(publicJwk, 'sha256');
}

async function proof(spec) {
  const privateJwk = keys[spec.key];
  if (!privateJwk) throw new Error(`unknown key ${spec.key}`);
  const alg = spec.alg ?? privateJwk.alg;
  const { alg: _alg, ...publicJwk } = pub[spec.key];
  const claims = {
    jti: spec.jti ?? crypto.randomUUID(),
    htm: spec.htm,
    htu: spec.htu,
    iat: spec.iat ?? Math.floor(Date.now() / 1000),
  };
  if (spec.accessToken) {
    claims.ath = jose.base64url.encode(crypto.createHash('sha256').update(spec.accessToken).digest());
  }
  if (spec.ath) claims.ath = spec.ath;
  if (spec.nonce) claims.nonce = spec.nonce;
  for (const name of spec.omit ?? []) delete claims[name];
  const typ = spec.typ ?? 'dpop+jwt';
  if (spec.unsecured) {
    const header = jose.base64url.encode(JSON.stringify({ alg: 'none', typ, jwk: publicJwk }));
    return `${header}.${jose.base64url.encode(JSON.stringify(claims))}.`;
  }
  if (spec.hmacSecret) {
    return new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ, jwk: publicJwk })
      .sign(new TextEncoder().encode(spec.hmacSecret));
  }
  const jwk = spec.privateJwk ? privateJwk : publicJwk;
  const key = await jose.importJWK(privateJwk, alg);
  return new jose.SignJWT(claims).setProtectedHeader({ alg, typ, jwk }).sign(key);
}

const proofs = [];
for (const spec of input.proofs ?? []) proofs.push(await proof(spec));
process.stdout.write(`${JSON.stringify({ keys, public: pub, thumbprints, proofs })}\n`);
