'use strict';

// Requests to relay: the base URL and API key from the connection, problem+json errors made
// readable. Only two scopes are ever needed: `subscriptions:write` (subscribe, unsubscribe,
// the current secret after a rotation) and `events:read` (samples, the connection test).

const baseUrl = (bundle) => String(bundle.authData.base_url || '').replace(/\/+$/, '');

const addApiKey = (request, z, bundle) => {
  if (bundle.authData && bundle.authData.api_key) {
    request.headers = request.headers || {};
    request.headers.Authorization = `Bearer ${bundle.authData.api_key}`;
  }
  return request;
};

// relay answers errors as RFC 9457 problem+json: show its `detail`, not a stack of JSON.
const readableErrors = (response, z) => {
  if (response.status < 400 || (response.request && response.request.skipThrowForStatus)) {
    return response;
  }
  let detail = response.content;
  try {
    const problem = JSON.parse(response.content);
    detail = problem.detail || problem.title || detail;
  } catch (_) {
    // not JSON: keep the raw text
  }
  if (response.status === 401) {
    throw new z.errors.Error(`relay refused the API key: ${detail}`, 'AuthenticationError', 401);
  }
  if (response.status === 403) {
    throw new z.errors.Error(
      `the API key lacks a scope this needs (subscriptions:write, events:read): ${detail}`,
      'InsufficientScope',
      403
    );
  }
  throw new z.errors.Error(`relay answered ${response.status}: ${detail}`, 'RelayError', response.status);
};

module.exports = { baseUrl, addApiKey, readableErrors };
