import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedactor } from '../../src/enrich/redact';

const redactQuery = createRedactor();

test('secret-looking keys are redacted, case-insensitively', () => {
  assert.equal(redactQuery('apikey=abc&page=2'), 'apikey=REDACTED&page=2');
  assert.equal(redactQuery('API_KEY=abc&Token=t&x=1'), 'API_KEY=REDACTED&Token=REDACTED&x=1');
  assert.equal(
    redactQuery(
      'access_token=a&password=b&secret=c&signature=d&sig=e&auth=f&jwt=g&session=h&client_secret=i&api-key=j&key=k',
    ),
    'access_token=REDACTED&password=REDACTED&secret=REDACTED&signature=REDACTED&sig=REDACTED&auth=REDACTED&jwt=REDACTED&session=REDACTED&client_secret=REDACTED&api-key=REDACTED&key=REDACTED',
  );
  assert.equal(redactQuery('X-Amz-Signature=abc'), 'X-Amz-Signature=REDACTED');
});

test('encoded and bracketed keys, empty values, no values, odd input', () => {
  assert.equal(redactQuery('api%5Fkey=abc'), 'api%5Fkey=REDACTED', 'percent-encoded key');
  assert.equal(redactQuery('user[password]=abc'), 'user[password]=REDACTED', 'bracketed name');
  assert.equal(redactQuery('token='), 'token=', 'nothing to hide');
  assert.equal(redactQuery('token'), 'token', 'flag without value');
  assert.equal(redactQuery('%E0%A4%A=1&token=x'), '%E0%A4%A=1&token=REDACTED', 'bad escape does not throw');
  assert.equal(redactQuery(''), '');
  assert.equal(redactQuery('a=1&&b=2'), 'a=1&&b=2', 'unchanged when nothing matches');
  assert.equal(redactQuery('keyboard=1&monkey=2'), 'keyboard=1&monkey=2', 'whole-key match only');
  assert.equal(redactQuery('token=a=b'), 'token=REDACTED');
});

test('extra keys are configurable', () => {
  const r = createRedactor(['Customer_Ssn', ' otp ']);
  assert.equal(r('customer_ssn=1&OTP=2&apikey=3&q=4'), 'customer_ssn=REDACTED&OTP=REDACTED&apikey=REDACTED&q=4');
  assert.equal(createRedactor()('q=1&token=2'), 'q=1&token=REDACTED');
});
