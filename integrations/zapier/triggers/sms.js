'use strict';

// REST-hook triggers on relay's SMS events. Subscribing creates a relay subscription with
// `payload_format: "flat"` for one event type; relay then POSTs each event to Zapier's hook
// URL as one flat object, signed with Standard Webhooks.

const crypto = require('crypto');
const { baseUrl } = require('../lib/http');
const { verify } = require('../lib/signature');

const FIELDS = [
  { key: 'id', label: 'Event ID' },
  { key: 'type', label: 'Event Type' },
  { key: 'occurred_at', label: 'Sent At', type: 'datetime' },
  { key: 'from', label: 'From (Sender Number)' },
  { key: 'recipient', label: 'To (Recipient Number)' },
  { key: 'text', label: 'Message Text' },
  { key: 'document_id', label: 'Message ID' },
  { key: 'origin_document_id', label: 'Reply To Message ID' },
  { key: 'timestamp', label: 'Sent At (Epoch Seconds)', type: 'integer' },
  { key: 'source_id', label: 'Relay Source ID' },
];

// The same flat shape whatever relay sent (a standard body is flattened the way relay does).
const flatten = (body) => {
  if (!body || typeof body !== 'object' || !body.data) return body;
  const { documentId, originDocumentId, ...rest } = body.data;
  const flat = { type: body.type, occurred_at: body.timestamp, document_id: documentId };
  if (originDocumentId !== undefined) flat.origin_document_id = originDocumentId;
  return { ...flat, ...rest };
};

const subscribe = (eventType, noun) => async (z, bundle) => {
  const body = {
    url: bundle.targetUrl,
    event_types: [eventType],
    payload_format: 'flat',
    description: `Zapier: ${noun}`,
  };
  // The same hook URL and type give the same key, so a subscribe Zapier repeats does not
  // make a second subscription. If the remembered one was deleted since (the Zap was turned
  // off and on again within relay's 24 h), subscribe afresh under a new key.
  const key = crypto
    .createHash('sha256')
    .update(`${bundle.targetUrl} ${eventType}`)
    .digest('hex');
  const create = (idempotencyKey) =>
    z.request({
      url: `${baseUrl(bundle)}/v1/subscriptions`,
      method: 'POST',
      headers: { 'Idempotency-Key': idempotencyKey },
      body,
    });
  let response = await create(`zapier-${key}`);
  if (response.getHeader('idempotent-replayed') === 'true') {
    const still = await z.request({
      url: `${baseUrl(bundle)}/v1/subscriptions/${encodeURIComponent(response.data.id)}`,
      skipThrowForStatus: true,
    });
    if (still.status === 404) response = await create(`zapier-${key}-${Date.now()}`);
    else still.throwForStatus();
  }
  // Zapier keeps this as bundle.subscribeData: the id to unsubscribe, the secret to verify.
  const { id, secret } = response.data;
  return { id, secret };
};

const unsubscribe = async (z, bundle) => {
  const id = bundle.subscribeData && bundle.subscribeData.id;
  if (!id) return {};
  const response = await z.request({
    url: `${baseUrl(bundle)}/v1/subscriptions/${encodeURIComponent(id)}`,
    method: 'DELETE',
    skipThrowForStatus: true,
  });
  if (response.status !== 404) response.throwForStatus(); // already gone is unsubscribed too
  return {};
};

// The subscription's signing secret now, or undefined (gone, or not readable with this key).
const currentSecret = async (z, bundle) => {
  const response = await z.request({
    url: `${baseUrl(bundle)}/v1/subscriptions/${encodeURIComponent(bundle.subscribeData.id)}/secret`,
    skipThrowForStatus: true,
  });
  return response.status === 200 ? response.data.secret : undefined;
};

// Throws when the webhook is not signed by the subscription. The secret Zapier kept from
// subscribe stops signing once the operator rotates it (at once with `overlap_seconds: 0`),
// so a signature that does not match it is checked once more against the current secret.
const verifyWebhook = async (z, bundle, raw) => {
  const known = bundle.subscribeData.secret;
  try {
    verify(known, raw.headers, raw.content);
  } catch (error) {
    const current = error.isMismatch && bundle.subscribeData.id && (await currentSecret(z, bundle));
    if (!current || current === known) throw error;
    verify(current, raw.headers, raw.content);
  }
};

const perform = (eventType) => async (z, bundle) => {
  const secret = bundle.subscribeData && bundle.subscribeData.secret;
  const raw = bundle.rawRequest;
  if (secret && raw && typeof raw.content === 'string' && raw.headers) {
    try {
      await verifyWebhook(z, bundle, raw);
    } catch (error) {
      throw new z.errors.Error(`rejected webhook: ${error.message}`, 'InvalidSignature', 401);
    }
  }
  const item = flatten(bundle.cleanedRequest);
  // Only this trigger's type fires the Zap (never `relay.ping`, sent by relay's test route).
  if (!item || item.type !== eventType) return [];
  return [item];
};

const performList = (eventType) => async (z, bundle) => {
  const response = await z.request({
    url: `${baseUrl(bundle)}/v1/events/samples`,
    params: { type: eventType, format: 'flat', limit: 10 },
  });
  return response.data;
};

const makeTrigger = ({ key, noun, label, description, eventType, sample }) => ({
  key,
  noun,
  display: { label, description },
  operation: {
    type: 'hook',
    performSubscribe: subscribe(eventType, label),
    performUnsubscribe: unsubscribe,
    perform: perform(eventType),
    performList: performList(eventType),
    sample,
    outputFields: FIELDS.filter((field) => field.key in sample),
  },
});

const incoming = makeTrigger({
  key: 'new_incoming_sms',
  noun: 'SMS',
  label: 'New Incoming SMS',
  description: 'Triggers when an SMS arrives at one of your numbers.',
  eventType: 'message.received',
  sample: {
    id: 'evt_k5qgy3zjn3zq6j3cuzn3hq4b',
    type: 'message.received',
    occurred_at: '2013-04-22T09:59:29Z',
    document_id: '51750a01e4b0d1406c9c5fdb',
    origin_document_id: '517509fee4b0b1be3f128ef5',
    from: '61555879987',
    recipient: '61500079987',
    text: 'Hello, is the shop open today?',
    timestamp: 1366624769,
    source_id: 'src_3f9k2m4q7r8s9t2v',
  },
});

const outgoing = makeTrigger({
  key: 'new_outgoing_sms',
  noun: 'SMS',
  label: 'New Outgoing SMS',
  description: 'Triggers when an SMS is sent from one of your numbers.',
  eventType: 'message.sent',
  sample: {
    id: 'evt_2m4q7r8s9t2v3f9k5qgy3zjn',
    type: 'message.sent',
    occurred_at: '2013-04-22T10:02:11Z',
    document_id: '51750aa3e4b0d1406c9c5fe0',
    recipient: '61555879987',
    text: 'Yes, until 6 pm.',
    timestamp: 1366624931,
    source_id: 'src_3f9k2m4q7r8s9t2v',
  },
});

module.exports = { incoming, outgoing, flatten };
