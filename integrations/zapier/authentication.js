'use strict';

const { baseUrl } = require('./lib/http');

module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'base_url',
      label: 'Relay URL',
      type: 'string',
      required: true,
      helpText:
        'The public HTTPS address of your relay admin API, e.g. `https://relay.example.com` (without `/v1`).',
    },
    {
      key: 'api_key',
      label: 'API key',
      type: 'password',
      required: true,
      helpText:
        'A relay API key (`rk_...`) with the scopes `subscriptions:write` and `events:read`; your relay operator creates it with `relay keys create`.',
    },
  ],
  // The connection test reads one sample: it needs only `events:read`.
  test: async (z, bundle) => {
    const response = await z.request({
      url: `${baseUrl(bundle)}/v1/events/samples`,
      params: { limit: 1, format: 'flat' },
    });
    return { base_url: baseUrl(bundle), samples: response.data.length };
  },
  connectionLabel: (z, bundle) => baseUrl(bundle).replace(/^https?:\/\//, ''),
};
