// A real OpenID provider (the `oidc-provider` package) on 127.0.0.1, for the
// integration tests (tests/support/oidc.rs starts it).
//
//   node tests/oidc/provider.mjs '{"port":0,"algs":["RS256","ES256"]}'
//
// The configuration is one JSON argument, or the OIDC_PROVIDER_CONFIG
// variable; every field is optional:
//
//   port            TCP port on 127.0.0.1; 0 (default) picks a free one
//   algs            signing algorithms of a generated key set, any of
//                   "RS256", "ES256", "EdDSA" (default: all three)
//   jwksFile        a private JWK Set file: loaded if it exists, else the
//                   generated set is written there (a restart keeps its keys)
//   rotate          with an existing jwksFile: new keys for `algs` are put
//                   first (they sign from now on) and the old ones kept
//                   after them (still published); the file is rewritten
//   resource        the resource indicator (default "https://api.example.test")
//   audience        the `aud` of access tokens (default: the resource)
//   scopes          the scopes the resource server knows (default
//                   "read write admin"); other requested scopes are dropped
//   claims          extra claims on every access token (e.g. {"roles":["ADMIN"]})
//   clientClaims    {client_id: claims}, merged over `claims` per client
//   accessTokenTtl  access token lifetime in seconds (default 300)
//   watchStdin      exit when stdin ends (default true)
//
// Clients: one per algorithm of the key set, `client-rs256`, `client-es256`,
// `client-eddsa`, secret `<client_id>-secret` (client_secret_basic), grant
// `client_credentials`; its access tokens (RFC 9068 `at+jwt`) and ID tokens
// are signed with that algorithm. A token request with a `DPoP` proof gets a
// DPoP-bound token (`cnf.jkt`).
//
// Once listening it prints one line to stdout: `READY http://127.0.0.1:PORT`
// (the issuer). It exits when stdin ends (its parent closed the pipe or died),
// when its parent process changes, and on SIGTERM or SIGINT.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// oidc-provider warns on stderr about Node 20 ("Unsupported runtime") and works.
const { default: Provider } = await import('oidc-provider');

const ALGS = {
  RS256: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: () => crypto.generateKeyPairSync('ed25519'),
};

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

function parseConfig() {
  const raw = process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG ?? '{}';
  try {
    return JSON.parse(raw);
  } catch (e) {
    return fail(`the configuration is not JSON: ${e.message}`);
  }
}

function generateKey(alg) {
  const make = ALGS[alg];
  if (!make) fail(`unsupported algorithm ${JSON.stringify(alg)} (RS256, ES256, EdDSA)`);
  const { privateKey } = make();
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    ...jwk, kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`, alg, use: 'sig',
  };
}

function loadKeys(config) {
  const algs = config.algs ?? Object.keys(ALGS);
  if (!Array.isArray(algs) || algs.length === 0) fail('`algs` must be a non-empty array');
  const file = config.jwksFile;
  if (file && fs.existsSync(file)) {
    const existing = JSON.parse(fs.readFileSync(file, 'utf8')).keys;
    if (!config.rotate) return existing;
    const keys = [...algs.map(generateKey), ...existing];
    fs.writeFileSync(file, JSON.stringify({ keys }, null, 2));
    return keys;
  }
  const keys = algs.map(generateKey);
  if (file) fs.writeFileSync(file, JSON.stringify({ keys }, null, 2));
  return keys;
}

function clientId(alg) {
  return `client-${alg.toLowerCase()}`;
}

const config = parseConfig();
const keys = loadKeys(config);
const resource = config.resource ?? 'https://api.example.test';
const audience = config.audience ?? resource;
const scopes = config.scopes ?? 'read write admin';
const ttl = config.accessTokenTtl ?? 300;

// One client per algorithm present in the key set.
const algOfClient = new Map();
for (const key of keys) algOfClient.set(clientId(key.alg), key.alg);
const clients = [...algOfClient].map(([id, alg]) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  // Needed whenever the key set has no RS256 key (the default ID token alg).
  id_token_signed_response_alg: alg,
}));

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(config.port ?? 0), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys },
  clients,
  scopes: ['openid', 'offline_access', ...scopes.split(' ')],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator, client) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget(`unknown resource ${indicator}`);
        }
        return {
          scope: scopes,
          audience,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: algOfClient.get(client.clientId) } },
        };
      },
    },
  },
  extraTokenClaims: (_ctx, token) => {
    const perClient = config.clientClaims?.[token.clientId];
    if (!config.claims && !perClient) return undefined;
    return { ...config.claims, ...perClient };
  },
  ttl: { ClientCredentials: ttl },
});
// Plain http on loopback: no proxy in front, nothing to trust.
provider.proxy = false;
provider.on('server_error', (_ctx, error) => {
  process.stderr.write(`provider.mjs: server_error: ${error.stack}\n`);
});

server.on('request', provider.callback());

process.stdout.write(`READY ${issuer}\n`);

// Never outlive the test process.
const exit = () => {
  server.close();
  process.exit(0);
};
if (config.watchStdin ?? true) {
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
}
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) exit();
}, 1000).unref();
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
