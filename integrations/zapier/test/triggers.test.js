'use strict';

// The app against a live relay (started by tests/workers/test_zapier_app.py, which passes
// RELAY_URL, RELAY_TOKEN (the admin token), RELAY_SIMULATOR_URL and RELAY_SIMULATOR_USERNAME).
// A local HTTP server stands in for Zapier's hook URL; SMS come from the MC5 simulator's
// control API. The app connects as a Zapier user would: with a tenant's key holding only
// `subscriptions:write` and `events:read`, for a tenant with its own source; a second tenant's
// key must see none of it.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const { after, before, describe, it } = require('node:test');

const zapier = require('zapier-platform-core');
const { compileApp, serializeApp } = require('zapier-platform-core/src/tools/schema');
const { validateAppDefinition } = require('zapier-platform-schema');

const App = require('../index');

const appTester = zapier.createAppTester(App);
const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/workers/test_zapier_app.py`);
  return value;
};
const RELAY_URL = need('RELAY_URL');
const SIMULATOR_URL = need('RELAY_SIMULATOR_URL');
const ZAPIER_SCOPES = ['subscriptions:write', 'events:read'];
// The keys are created in before(): the first tenant's, and another tenant's.
const authData = { base_url: `${RELAY_URL}/`, api_key: undefined };
const otherAuthData = { base_url: RELAY_URL, api_key: undefined };
let account; // the first tenant's MC5 account on the simulator
const incoming = App.triggers.new_incoming_sms.operation;
const outgoing = App.triggers.new_outgoing_sms.operation;

// What Zapier's hook URL received, and a promise per next request.
const hooks = [];
let waiting = [];
const hookServer = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const received = { headers: req.headers, body };
    hooks.push(received);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}');
    waiting = waiting.filter((w) => !(w.match(received) && (w.resolve(received), true)));
  });
});
const nextHook = (match, timeoutMs = 30000) => {
  const found = hooks.find(match);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching webhook within 30 s')), timeoutMs);
    waiting.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) });
  });
};
let targetUrl;

// A webhook as Zapier hands it to perform: the parsed body and the raw request.
const hookBundle = (received, subscribeData) => ({
  authData,
  subscribeData,
  cleanedRequest: JSON.parse(received.body),
  rawRequest: {
    method: 'POST',
    headers: Object.fromEntries(
      Object.entries(received.headers).map(([k, v]) => [`Http-${k.replace(/(^|-)(\w)/g, (m) => m.toUpperCase())}`, v])
    ),
    content: received.body,
  },
});

const sendSms = async (message) => {
  const response = await fetch(`${SIMULATOR_URL}/_sim/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: account, messages: [message] }),
  });
  const body = await response.text();
  assert.equal(response.status, 201, body);
  return JSON.parse(body).documentIds[0];
};

const admin = (path, init = {}, token = need('RELAY_TOKEN')) =>
  fetch(`${RELAY_URL}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) },
  });

// POST JSON with the admin token (or `token`); the parsed answer, which must be 2xx.
const create = async (path, body, token) => {
  const response = await admin(
    path,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    token
  );
  const text = await response.text();
  assert.ok(response.ok, `${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : {};
};

// A tenant with a key the way an operator makes one for Zapier (README: "Zapier").
const tenantKey = async (name) => {
  const tenant = await create('/v1/tenants', { name });
  const key = await create('/v1/keys', { name: `zapier ${name}`, scopes: ZAPIER_SCOPES, tenant_id: tenant.id });
  assert.deepEqual(key.scopes, ZAPIER_SCOPES);
  return { tenant, key: key.key };
};

let firstTenant;

before(async () => {
  await new Promise((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${hookServer.address().port}/hooks/standard/1/abc/`;
  const suffix = crypto.randomBytes(4).toString('hex');
  account = `zapier-${suffix}@reseller`;
  const simulated = await fetch(`${SIMULATOR_URL}/_sim/accounts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: account, password: 's3cret' }),
  });
  assert.ok(simulated.ok, await simulated.text());
  firstTenant = await tenantKey(`acme ${suffix}`);
  authData.api_key = firstTenant.key;
  otherAuthData.api_key = (await tenantKey(`globex ${suffix}`)).key;
  await create('/v1/sources', {
    username: account,
    password: 's3cret',
    base_url: SIMULATOR_URL,
    poll_interval: 0.2,
    tenant_id: firstTenant.tenant.id,
  });
});
after(() => hookServer.close());

describe('app definition', () => {
  it('passes zapier-platform-schema validation as zapier push uploads it', () => {
    const { errors } = validateAppDefinition(serializeApp(compileApp(App)));
    assert.deepEqual(errors.map((e) => e.stack), []);
  });

  it('labels every output field and gives samples in the live shape', () => {
    for (const trigger of Object.values(App.triggers)) {
      const { sample, outputFields } = trigger.operation;
      for (const key of ['id', 'type', 'recipient', 'text', 'document_id']) assert.ok(key in sample);
      assert.ok(outputFields.every((field) => field.label));
    }
  });
});

describe('authentication', () => {
  it('accepts a valid key', async () => {
    const result = await appTester(App.authentication.test, { authData });
    assert.equal(result.base_url, RELAY_URL);
  });

  it('rejects a wrong key with relay\'s problem detail', async () => {
    const bundle = { authData: { ...authData, api_key: 'rk_wrong' } };
    await assert.rejects(appTester(App.authentication.test, bundle), /relay refused the API key/);
  });
});

describe('New incoming SMS', () => {
  let subscribeData;
  let liveItem; // what perform gave the Zap for the live SMS

  it('subscribes once with the flat payload, even when Zapier repeats it', async () => {
    subscribeData = await appTester(incoming.performSubscribe, { authData, targetUrl });
    assert.match(subscribeData.id, /^sub_/);
    assert.match(subscribeData.secret, /^whsec_/);
    const again = await appTester(incoming.performSubscribe, { authData, targetUrl });
    assert.equal(again.id, subscribeData.id);
    const shown = await (await admin(`/v1/subscriptions/${subscribeData.id}`)).json();
    assert.equal(shown.payload_format, 'flat');
    assert.deepEqual(shown.event_types, ['message.received']);
    assert.equal(shown.url, targetUrl);
    assert.equal(shown.tenant_id, firstTenant.tenant.id); // the key's tenant owns it
  });

  it('fires perform with a flat item for a live SMS, its signature verified', async () => {
    const documentId = await sendSms({
      kind: 'incoming',
      from: '61555879987',
      recipient: '61500079987',
      text: ' is the shop open?',
    });
    const received = await nextHook((r) => r.body.includes(documentId));
    const items = await appTester(incoming.perform, hookBundle(received, subscribeData));
    assert.equal(items.length, 1);
    const [item] = items;
    assert.equal(item.id, received.headers['webhook-id']);
    assert.equal(item.type, 'message.received');
    assert.equal(item.document_id, documentId);
    assert.equal(item.from, '61555879987');
    assert.equal(item.recipient, '61500079987');
    assert.equal(item.text, ' is the shop open?');
    liveItem = item;
  });

  it('refuses a webhook whose body was altered', async () => {
    const received = hooks.find((r) => r.body.includes('is the shop open?'));
    const forged = { ...received, body: received.body.replace('open', 'shut') };
    await assert.rejects(appTester(incoming.perform, hookBundle(forged, subscribeData)), /rejected webhook/);
  });

  it('refuses a webhook signed with a secret that is not the subscription\'s', async () => {
    const received = hooks.find((r) => r.body.includes('is the shop open?'));
    const otherKey = crypto.randomBytes(32);
    const id = received.headers['webhook-id'];
    const timestamp = String(Math.floor(Date.now() / 1000));
    const forgedSignature = crypto
      .createHmac('sha256', otherKey)
      .update(`${id}.${timestamp}.${received.body}`)
      .digest('base64');
    const headers = {
      ...received.headers,
      'webhook-timestamp': timestamp,
      'webhook-signature': `v1,${forgedSignature}`,
    };
    await assert.rejects(
      appTester(incoming.perform, hookBundle({ ...received, headers }, subscribeData)),
      /rejected webhook: webhook-signature does not match the subscription secret/
    );
    const unsigned = hookBundle(received, subscribeData);
    delete unsigned.rawRequest.headers['Http-Webhook-Signature'];
    await assert.rejects(appTester(incoming.perform, unsigned), /rejected webhook: .*header missing/);
  });

  it('passes a webhook through when no secret is known (nothing to verify against)', async () => {
    const received = hooks.find((r) => r.body.includes('is the shop open?'));
    const items = await appTester(incoming.perform, hookBundle(received, { id: subscribeData.id }));
    assert.equal(items.length, 1);
    assert.equal(items[0].id, received.headers['webhook-id']);
  });

  it('does not fire the Zap for relay.ping', async () => {
    const attempt = await (await admin(`/v1/subscriptions/${subscribeData.id}/test`, { method: 'POST' })).json();
    assert.equal(attempt.status_code, 200);
    const ping = await nextHook((r) => r.body.includes('relay.ping'));
    assert.deepEqual(await appTester(incoming.perform, hookBundle(ping, subscribeData)), []);
  });

  it('lists samples in the same flat shape, newest first', async () => {
    const items = await appTester(incoming.performList, { authData });
    assert.ok(Array.isArray(items) && items.length >= 1);
    const [newest] = items;
    assert.equal(newest.text, ' is the shop open?');
    for (const key of ['id', 'from', 'recipient', 'text', 'document_id', 'occurred_at']) {
      assert.ok(key in newest, key);
    }
    assert.ok(items.every((item) => item.type === 'message.received'));
    // The same message as a sample and as a live hook: field for field the same item.
    assert.deepEqual(items.find((item) => item.id === liveItem.id), liveItem);
  });

  it('still verifies after the operator rotates the secret, with no overlap', async () => {
    const rotated = await create(`/v1/subscriptions/${subscribeData.id}/secret/rotate`, { overlap_seconds: 0 });
    assert.notEqual(rotated.secret, subscribeData.secret);
    const documentId = await sendSms({ kind: 'incoming', from: '61555879987', text: 'after rotation' });
    const received = await nextHook((r) => r.body.includes(documentId));
    assert.equal(received.headers['webhook-signature'].split(' ').length, 1); // the new one only
    // Zapier still holds the secret from subscribe: perform checks the current one.
    const [item] = await appTester(incoming.perform, hookBundle(received, subscribeData));
    assert.equal(item.document_id, documentId);
    const forged = { ...received, body: received.body.replace('after', 'before') };
    await assert.rejects(
      appTester(incoming.perform, hookBundle(forged, subscribeData)),
      /rejected webhook: webhook-signature does not match/
    );
  });

  it('unsubscribes, and a second unsubscribe succeeds too', async () => {
    const bundle = { authData, subscribeData };
    assert.deepEqual(await appTester(incoming.performUnsubscribe, bundle), {});
    assert.equal((await admin(`/v1/subscriptions/${subscribeData.id}`)).status, 404);
    assert.deepEqual(await appTester(incoming.performUnsubscribe, bundle), {});
  });

  it('subscribes afresh when the remembered subscription is gone', async () => {
    const renewed = await appTester(incoming.performSubscribe, { authData, targetUrl });
    assert.notEqual(renewed.id, subscribeData.id);
    assert.equal((await admin(`/v1/subscriptions/${renewed.id}`)).status, 200);
    await appTester(incoming.performUnsubscribe, { authData, subscribeData: renewed });
  });
});

describe('another tenant', () => {
  it("sees none of the first tenant's messages or subscriptions", async () => {
    const first = await appTester(incoming.performSubscribe, { authData, targetUrl: `${targetUrl}tenant` });
    const ownSamples = await appTester(incoming.performList, { authData });
    assert.ok(ownSamples.length >= 1); // the first tenant has messages to leak
    const ownIds = new Set(ownSamples.map((item) => item.id));

    const auth = await appTester(App.authentication.test, { authData: otherAuthData });
    assert.equal(auth.samples, 0);
    for (const trigger of [incoming, outgoing]) {
      const samples = await appTester(trigger.performList, { authData: otherAuthData });
      assert.deepEqual(samples, []);
      assert.ok(!samples.some((item) => ownIds.has(item.id)));
    }
    const listed = await (await admin('/v1/subscriptions?limit=100', {}, otherAuthData.api_key)).json();
    assert.deepEqual(listed.data, []);
    const peek = await admin(`/v1/subscriptions/${first.id}`, {}, otherAuthData.api_key);
    assert.equal(peek.status, 404); // not 403: ids cannot be probed

    // Its unsubscribe of the first tenant's id finds nothing, so deletes nothing.
    assert.deepEqual(await appTester(incoming.performUnsubscribe, { authData: otherAuthData, subscribeData: first }), {});
    assert.equal((await admin(`/v1/subscriptions/${first.id}`)).status, 200);

    // The same hook URL subscribed with its key is a subscription of its own, not a replay.
    const second = await appTester(incoming.performSubscribe, { authData: otherAuthData, targetUrl: `${targetUrl}tenant` });
    assert.notEqual(second.id, first.id);
    const mine = await (await admin('/v1/subscriptions?limit=100', {}, otherAuthData.api_key)).json();
    assert.deepEqual(mine.data.map((sub) => sub.id), [second.id]);
    const theirs = await (await admin('/v1/subscriptions?limit=100', {}, authData.api_key)).json();
    assert.ok(!theirs.data.some((sub) => sub.id === second.id));

    await appTester(incoming.performUnsubscribe, { authData, subscribeData: first });
    await appTester(incoming.performUnsubscribe, { authData: otherAuthData, subscribeData: second });
  });
});

describe('New outgoing SMS', () => {
  it('fires for sent messages only, with no from', async () => {
    const subscribeData = await appTester(outgoing.performSubscribe, { authData, targetUrl });
    const documentId = await sendSms({ kind: 'outgoing', recipient: '61555879987', text: 'Yes, until 6.' });
    const received = await nextHook((r) => r.body.includes(documentId));
    const [item] = await appTester(outgoing.perform, hookBundle(received, subscribeData));
    assert.equal(item.type, 'message.sent');
    assert.equal(item.recipient, '61555879987');
    assert.equal(item.text, 'Yes, until 6.');
    assert.ok(!('from' in item));
    const listed = await appTester(outgoing.performList, { authData });
    assert.ok(listed.length >= 1 && listed.every((i) => i.type === 'message.sent'));
    await appTester(outgoing.performUnsubscribe, { authData, subscribeData });
  });
});
