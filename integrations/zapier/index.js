'use strict';

const { version: platformVersion } = require('zapier-platform-core');
const { version } = require('./package.json');
const authentication = require('./authentication');
const { addApiKey, readableErrors } = require('./lib/http');
const { incoming, outgoing } = require('./triggers/sms');

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [readableErrors],
  triggers: {
    [incoming.key]: incoming,
    [outgoing.key]: outgoing,
  },
};
