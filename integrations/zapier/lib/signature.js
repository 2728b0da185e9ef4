'use strict';

// Standard Webhooks verification (https://www.standardwebhooks.com/), symmetric v1:
// signature = base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)), key = the base64 part of
// the `whsec_` secret. During a secret rotation relay sends two space-separated signatures.
const crypto = require('crypto');

const TOLERANCE_S = 5 * 60;

const header = (headers, name) => {
  // Zapier hands webhook headers over as `Http-Webhook-Id`; accept the plain name too.
  const wanted = [name, `http-${name}`];
  for (const [key, value] of Object.entries(headers || {})) {
    if (wanted.includes(key.toLowerCase())) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
};

// Throws an Error naming what is wrong; returns nothing when the signature verifies.
const verify = (secret, headers, body, nowS = Math.floor(Date.now() / 1000)) => {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new Error('webhook-id, webhook-timestamp or webhook-signature header missing');
  }
  const sentAt = Number(timestamp);
  if (!Number.isInteger(sentAt) || Math.abs(nowS - sentAt) > TOLERANCE_S) {
    throw new Error('webhook-timestamp is not within 5 minutes of now');
  }
  const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
  const expected = crypto
    .createHmac('sha256', key)
    .update(`${id}.${timestamp}.${body}`)
    .digest();
  const matches = String(signatures)
    .split(' ')
    .filter((part) => part.startsWith('v1,'))
    .map((part) => Buffer.from(part.slice(3), 'base64'))
    .some((given) => given.length === expected.length && crypto.timingSafeEqual(given, expected));
  if (!matches) {
    const error = new Error('webhook-signature does not match the subscription secret');
    error.isMismatch = true; // the secret may have been rotated: worth a second look
    throw error;
  }
};

module.exports = { verify, header };
