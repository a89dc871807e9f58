// Local OpenID Connect provider stand-in for Tokenward end-to-end tests.
//
//   node standin/oidc/server.mjs --redirect-uri URI [--redirect-uri URI2 ...] [--access-ttl SECONDS]
//
// Runs two servers on 127.0.0.1 (OS-chosen ports):
//   * a real OpenID Connect provider (npm `oidc-provider`), issuer http://127.0.0.1:<port>,
//     with the development login/consent pages enabled;
//   * a protected resource ("deployment") that accepts `Authorization: Bearer <token>`
//     on /api/* and checks the token by introspection at the provider.
//
// stdout carries only JSON lines: first {"event":"ready",...}, then {"event":"request",...}
// for every /api/ request, {"event":"token",...} whenever the token endpoint issues tokens,
// and {"event":"refused",...} for each token request refused on the test's demand.
//
// `POST <resource>/control/refuse-tokens` makes the token endpoint answer every later
// request `400 invalid_grant`, as a provider does once a refresh token was revoked.
// Everything else (oidc-provider notices and warnings, errors) goes to stderr.
// The process exits when stdin closes, and on SIGTERM/SIGINT.

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info (stdout); keep stdout for JSON lines only.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { default: Provider } = await import('oidc-provider');

const CLIENT_ID = 'tokenward';
const RESOURCE_CLIENT_ID = 'deployment';
const RESOURCE_CLIENT_SECRET = 'deployment-secret';

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fingerprint(token) {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

function usage(message) {
  process.stderr.write(`${message}\nusage: node server.mjs --redirect-uri URI [--redirect-uri URI ...] [--access-ttl SECONDS]\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      'redirect-uri': { type: 'string', multiple: true },
      'access-ttl': { type: 'string', default: '60' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (err) {
  usage(err.message);
}
const redirectUris = args['redirect-uri'] ?? [];
if (redirectUris.length === 0) usage('at least one --redirect-uri is required');
const accessTtl = Number(args['access-ttl']);
if (!Number.isInteger(accessTtl) || accessTtl <= 0) usage('--access-ttl must be a positive integer');

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// ---------------------------------------------------------------- provider

let providerHandler = (_req, res) => { res.statusCode = 503; res.end(); };
const providerServer = createServer((req, res) => providerHandler(req, res));
const providerPort = await listen(providerServer);
const issuer = `http://127.0.0.1:${providerPort}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    {
      client_id: RESOURCE_CLIENT_ID,
      client_secret: RESOURCE_CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      grant_types: [],
      response_types: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id === 'alice' ? 'Alice Liddell' : id,
          email: `${id}@example.test`,
        };
      },
    };
  },
  // The profile and email claims in the ID token itself, as Keycloak and most
  // providers put them, so the extension can say who logged in.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    introspection: {
      enabled: true,
      // Only the protected resource (or the token's own client) may introspect.
      allowedPolicy: async (_ctx, client, token) => (
        client.clientId === RESOURCE_CLIENT_ID || client.clientId === token.clientId
      ),
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => client.clientId === token.clientId,
    },
  },
  // Default: refresh token iff the client may use refresh_token and offline_access was
  // granted (offline_access itself is only kept when the request has prompt=consent).
  issueRefreshToken: async (_ctx, client, code) => (
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')
  ),
  // Allow the extension (any origin) to call the token/revocation endpoints via CORS.
  clientBasedCORS: () => true,
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
  },
  ttl: {
    AccessToken: () => accessTtl,
    AuthorizationCode: () => 60,
    IdToken: () => 60 * 60,
    // Like the library default: a rotated refresh token of a public client keeps the
    // remaining lifetime of its predecessor instead of extending it.
    RefreshToken: (ctx) => ctx?.oidc?.entities?.RotatedRefreshToken?.remainingTTL ?? 24 * 60 * 60,
    Interaction: () => 60 * 60,
    Session: () => 24 * 60 * 60,
    Grant: () => 24 * 60 * 60,
  },
});

provider.on('grant.success', (ctx) => {
  const accessToken = ctx.body?.access_token;
  emit({
    event: 'token',
    grant: ctx.oidc.params.grant_type,
    token: typeof accessToken === 'string' ? fingerprint(accessToken) : null,
    at: Date.now(),
  });
});
for (const name of ['grant.error', 'server_error', 'authorization.error', 'introspection.error', 'revocation.error']) {
  provider.on(name, (_ctx, err) => {
    process.stderr.write(`oidc-provider ${name}: ${err?.name ?? ''} ${err?.message ?? ''} ${err?.error_description ?? ''}\n`);
  });
}

let refuseTokens = false;
const providerCallback = provider.callback();
providerHandler = (req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (refuseTokens && req.method === 'POST' && path === '/token') {
    res.statusCode = 400;
    res.setHeader('content-type', 'application/json');
    res.setHeader('access-control-allow-origin', '*');
    res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'grant request is invalid' }));
    emit({ event: 'refused', at: Date.now() });
    return;
  }
  providerCallback(req, res);
};

// ---------------------------------------------------------------- protected resource

const introspectionEndpoint = `${issuer}/token/introspection`;
const resourceAuth = `Basic ${Buffer.from(`${RESOURCE_CLIENT_ID}:${RESOURCE_CLIENT_SECRET}`).toString('base64')}`;

const PAGE = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Deployment</title></head>
<body>
<h1>Deployment</h1>
<p id="status">pending</p>
<script>
window.seen = { ok: 0, unauthorized: 0 };
window.last = null;
async function tick() {
  try {
    const res = await fetch('/api/whoami');
    if (res.status === 200) window.seen.ok += 1;
    if (res.status === 401) window.seen.unauthorized += 1;
    try { window.last = await res.json(); } catch (_) { window.last = null; }
    document.getElementById('status').textContent = String(res.status);
  } catch (err) {
    document.getElementById('status').textContent = 'error: ' + err;
  }
  setTimeout(tick, 500);
}
tick();
</script>
</body>
</html>
`;

async function introspect(token) {
  const res = await fetch(introspectionEndpoint, {
    method: 'POST',
    headers: {
      authorization: resourceAuth,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({ token }).toString(),
  });
  if (!res.ok) throw new Error(`introspection answered ${res.status}`);
  return res.json();
}

async function handleApi(req, res, path) {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = match ? match[1] : null;
  let info = null;
  if (token) {
    try {
      info = await introspect(token);
    } catch (err) {
      process.stderr.write(`introspection failed: ${err.message}\n`);
    }
  }
  const ok = info?.active === true && info.client_id === CLIENT_ID;
  const tokenId = token ? fingerprint(token) : null;
  const sub = ok ? (info.sub ?? null) : null;
  const exp = ok ? (info.exp ?? null) : null;
  const status = ok ? 200 : 401;

  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('cache-control', 'no-store');
  if (ok) {
    res.end(JSON.stringify({ sub, exp, token: tokenId }));
  } else {
    res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    res.end(JSON.stringify({ error: 'invalid_token' }));
  }
  emit({
    event: 'request', path, status, token: tokenId, sub, exp, at: Date.now(),
  });
}

const resourceServer = createServer((req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (path.startsWith('/api/')) {
    handleApi(req, res, path).catch((err) => {
      process.stderr.write(`resource error: ${err.stack}\n`);
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
    return;
  }
  if (path === '/control/refuse-tokens' && req.method === 'POST') {
    refuseTokens = true;
    res.statusCode = 204;
    res.end();
    return;
  }
  if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.end(req.method === 'HEAD' ? undefined : PAGE);
    return;
  }
  res.statusCode = 404;
  res.setHeader('content-type', 'text/plain');
  res.end('not found\n');
});
const resourcePort = await listen(resourceServer);

emit({
  event: 'ready',
  issuer,
  resource: `http://127.0.0.1:${resourcePort}`,
  clientId: CLIENT_ID,
});

// ---------------------------------------------------------------- shutdown

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  for (const server of [providerServer, resourceServer]) {
    server.close();
    server.closeAllConnections();
  }
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
