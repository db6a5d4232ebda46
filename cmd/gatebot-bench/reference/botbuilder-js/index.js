// Reference echo bot for gatebot-bench: Microsoft's botbuilder-js
// (CloudAdapter + ConfigurationBotFrameworkAuthentication) answering every
// message with a text echo, so the load tool can measure its CPU per turn
// under the same load, on the same machine, as gatebot.
//
// Inbound auth is botbuilder's own: channel tokens are validated against
// ToBotFromChannelOpenIdMetadataUrl (the bench's fake IdP), issuer
// ToBotFromChannelTokenIssuer, audience MicrosoftAppId, the msteams
// endorsement, and the serviceurl claim against the activity.
//
// Outbound tokens: botbuilder gets them through MSAL, which accepts only an
// https authority, while the fake IdP is plain http on loopback. So the
// outbound token comes from a ServiceClientCredentialsFactory (botbuilder's
// documented extension point) doing the same client-credentials grant
// against BENCH_TOKEN_URL, cached until 5 minutes before expiry as MSAL does.
//
// Started by: gatebot-bench --reference botbuilder-js (which sets the env).
'use strict';

const http = require('node:http');
const { ActivityHandler, CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');

const env = (name) => {
    const v = process.env[name];
    if (!v) {
        console.error(`botbuilder-js reference: ${name} is required`);
        process.exit(2);
    }
    return v;
};

const appId = env('MicrosoftAppId');
const appPassword = env('MicrosoftAppPassword');
const tokenUrl = env('BENCH_TOKEN_URL');
const scope = process.env.ToChannelFromBotOAuthScope || 'https://api.botframework.com/.default';
const [host, port] = env('BENCH_LISTEN').split(':');

// A client-credentials token source shared by every connector client.
class BenchCredentials {
    constructor() {
        this.token = null;
        this.renewAt = 0;
        this.pending = null;
    }

    async getToken() {
        if (this.token && Date.now() < this.renewAt) {
            return this.token;
        }
        if (!this.pending) {
            this.pending = this.fetchToken().finally(() => {
                this.pending = null;
            });
        }
        return this.pending;
    }

    async fetchToken() {
        const body = new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: appId,
            client_secret: appPassword,
            scope,
        });
        const res = await fetch(tokenUrl, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body,
        });
        if (!res.ok) {
            throw new Error(`token endpoint answered ${res.status}`);
        }
        const t = await res.json();
        this.token = t.access_token;
        this.renewAt = Date.now() + (t.expires_in - 300) * 1000;
        return this.token;
    }

    async signRequest(webResource) {
        webResource.headers.set('authorization', `Bearer ${await this.getToken()}`);
        return webResource;
    }
}

const credentials = new BenchCredentials();
const credentialsFactory = {
    isValidAppId: async (id) => id === appId,
    isAuthenticationDisabled: async () => false,
    createCredentials: async (id) => {
        if (id !== appId) {
            throw new Error('Invalid appId.');
        }
        return credentials;
    },
};

const auth = new ConfigurationBotFrameworkAuthentication(
    {
        MicrosoftAppId: appId,
        MicrosoftAppPassword: appPassword,
        MicrosoftAppType: 'MultiTenant',
        ToBotFromChannelOpenIdMetadataUrl: env('ToBotFromChannelOpenIdMetadataUrl'),
        ToBotFromChannelTokenIssuer: env('ToBotFromChannelTokenIssuer'),
        ToChannelFromBotLoginUrl: tokenUrl,
        ToChannelFromBotOAuthScope: scope,
        ValidateAuthority: false,
    },
    credentialsFactory,
    { requiredEndorsements: [] },
);
const adapter = new CloudAdapter(auth);
adapter.onTurnError = async (context, error) => {
    console.error('turn error:', error && error.message);
};

class EchoBot extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            await context.sendActivity(`Echo: ${context.activity.text}`);
            await next();
        });
    }
}
const bot = new EchoBot();

// CloudAdapter.process takes any req/res shaped like express/restify's;
// node's http server with a JSON body parser is the smallest such host.
const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok\n');
        return;
    }
    if (req.method !== 'POST' || req.url !== '/api/messages') {
        res.writeHead(404);
        res.end();
        return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        try {
            req.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
            res.writeHead(400);
            res.end();
            return;
        }
        const out = {
            socket: res.socket,
            status(code) {
                res.statusCode = code;
                return out;
            },
            header(name, value) {
                res.setHeader(name, value);
                return out;
            },
            send(body) {
                if (body !== undefined) {
                    if (typeof body === 'object' && !Buffer.isBuffer(body)) {
                        res.setHeader('Content-Type', 'application/json');
                        body = JSON.stringify(body);
                    }
                    res.write(body);
                }
                return out;
            },
            end() {
                res.end();
                return out;
            },
        };
        adapter.process(req, out, (context) => bot.run(context)).catch((err) => {
            console.error('process error:', err && err.message);
            if (!res.headersSent) {
                res.statusCode = 500;
            }
            res.end();
        });
    });
});
server.keepAliveTimeout = 120000;
server.listen(Number(port), host, () => console.error(`botbuilder-js reference listening on ${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
